"""A world for checking the Vowpal Wabbit driver (scripts/bench_vw.py) itself.

Written in the format of `simulate --export`: 8 segments, 12 offers, 2,000
users a day for 10 days, k = 3. In each segment one offer (a different one per
segment) is redeemed at HIGH, the others at LOW x U(0.5, 1.5). With a strong
signal (HIGH 0.3, LOW 0.03) a working driver must take Vowpal Wabbit far above
uniform random (0.41 of the oracle here, which the script prints); with rates like the simulated
worlds' (HIGH 0.08, LOW 0.02) it shows how VW fares at a few percent.

Usage: python vw_sanity_world.py OUT HIGH LOW
"""

import json
import random
import sys

out, high, low = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rng = random.Random(7)
S, O, days, per_day, slots = 8, 12, 10, 2000, 3
rates = [[(high if o == (s * 5) % O else low * (0.5 + rng.random())) for o in range(O)] for s in range(S)]
# The oracle's k offers per segment.
best = [sorted(range(O), key=lambda o: -rates[s][o])[:slots] for s in range(S)]
users = []
oracle = [0] * days
for d in range(days):
    for i in range(per_day):
        s = rng.randrange(S)
        r = [o for o in range(O) if rng.random() < rates[s][o]]
        users.append({"d": d, "r": r, "s": s, "t": 0, "u": d * per_day + i})
        oracle[d] += sum(1 for o in best[s] if o in r)
hdr = {"days": days, "lastFifthFrom": days * 4 // 5, "offers": O, "oracleDaily": oracle, "perDay": per_day,
       "rates": rates, "seed": 1, "segments": [f"s{s}" for s in range(S)], "shifted": None, "slots": slots,
       "tiers": [["gold", 1.0]], "users": len(users), "world": "sanity"}
with open(out, "w") as f:
    f.write(json.dumps(hdr) + "\n")
    for u in users:
        f.write(json.dumps(u) + "\n")
uniform = sum(len(u["r"]) for u in users) * slots / O
print(json.dumps({"world": "sanity", "high": high, "low": low, "setting": "uniform random (expected)",
                  "vsOracle": round(uniform / sum(oracle), 4)}))
