"""Vowpal Wabbit beside the engine on a world of `offers campaign simulate`.

Reads the world that `offers campaign simulate --export FILE` wrote (a header,
then per user its day, segment, tier and the offers it would redeem that day:
the draws every policy of the simulation meets) and plays it with Vowpal
Wabbit's contextual bandit (`--cb_explore_adf`): shared features are the
user's context (segment, tier), actions are the offer ids, `-q SA` crosses
them. Like the engine, it learns between days only (daily batches: the
statistics of a day are seen from the next day on), from its own picks.

k picks per user: the first drawn from VW's probability mass function, each
next one from it renormalised over the offers not yet taken; each pick is
learnt with that conditional probability and cost -1 if redeemed, else 0.
Every setting uses `--cb_type mtr` (VW 9's default): MTR updates the chosen
action's regressor only, so a learnt example carries the shared features and
the chosen action alone (the same update as with the whole action list, and
15 times faster in Python). Within a day the model is fixed, so the pmf of
each context is asked once per day.

Usage: python bench_vw.py WORLD.jsonl NAME=ARGS [NAME=ARGS...]
Prints one JSON object per setting: reward, vs the oracle's reward (the
header's), and over the last fifth of the days.
"""

import json
import random
import sys

from vowpalwabbit import Workspace


def load(path):
    with open(path) as lines:
        header = json.loads(next(lines))
        users = [json.loads(line) for line in lines]
    return header, users


def play(header, users, args, seed):
    vw = Workspace(f"--cb_explore_adf -q SA --quiet --random_seed {seed} {args}")
    offers = header["offers"]
    slots = header["slots"]
    tiers = [name for name, _ in header["tiers"]]
    segments = header["segments"]
    actions = [f"|A offer-{i}" for i in range(offers)]
    rng = random.Random(seed)
    daily = [0] * header["days"]
    day_of = None
    pmfs = {}
    batch = []

    def shared(segment, tier):
        return f"shared |S segment={segments[segment]} tier={tiers[tier]}"

    def learn_batch():
        for segment, tier, offer, probability, rewarded in batch:
            cost = -1 if rewarded else 0
            vw.learn([shared(segment, tier), f"0:{cost}:{probability} |A offer-{offer}"])
        batch.clear()

    for user in users:
        if user["d"] != day_of:
            learn_batch()
            pmfs.clear()
            day_of = user["d"]
        key = (user["s"], user["t"])
        pmf = pmfs.get(key)
        if pmf is None:
            example = vw.parse([shared(*key)] + actions)
            pmf = list(vw.predict(example))
            vw.finish_example(example)
            pmfs[key] = pmf
        weights = list(pmf)
        rewarded = set(user["r"])
        for _ in range(slots):
            total = sum(weights)
            if total <= 0:
                break
            draw = rng.random() * total
            offer = 0
            while offer < offers - 1 and draw >= weights[offer]:
                draw -= weights[offer]
                offer += 1
            probability = max(weights[offer] / total, 1e-6)
            weights[offer] = 0.0
            hit = offer in rewarded
            daily[day_of] += hit
            batch.append((key[0], key[1], offer, probability, hit))
    vw.finish()
    return daily


def main():
    header, users = load(sys.argv[1])
    last_fifth = header["lastFifthFrom"]
    oracle = header["oracleDaily"]
    for spec in sys.argv[2:]:
        name, args = spec.split("=", 1)
        daily = play(header, users, args, header["seed"])
        reward = sum(daily)
        late = sum(daily[last_fifth:])
        print(
            json.dumps(
                {
                    "world": header["world"],
                    "seed": header["seed"],
                    "setting": name,
                    "args": args,
                    "reward": reward,
                    "vsOracle": round(reward / max(1, sum(oracle)), 4),
                    "lastFifthVsOracle": round(late / max(1, sum(oracle[last_fifth:])), 4),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
