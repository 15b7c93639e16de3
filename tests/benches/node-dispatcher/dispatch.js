// The dispatcher as a team would write it in Node.js with the AWS SDK v3
// (issue 26's comparison): one TransactWriteItems per row, the offer put if
// absent and the pending row deleted on the condition that every attribute
// of its image is unchanged, `concurrency` rows of a batch at once.
//
// Run by tests/benches/dispatch.rs as a floor process (the same protocol as
// the Rust floors): the spec file named by DISPATCH_BENCH_FLOOR_PROCESS,
// the warm-up's rows, `warm` on stdout; at `go` on stdin the measured rows,
// then `done`. Its client is the SDK's default, pointed at DynamoDB Local.
// Not part of the product: a yardstick, installed by scripts/bench.sh.
"use strict";

const fs = require("node:fs");
const readline = require("node:readline");
const { randomUUID } = require("node:crypto");
const { DynamoDBClient, TransactWriteItemsCommand } = require("@aws-sdk/client-dynamodb");

const BATCH = 100;
const spec = JSON.parse(fs.readFileSync(process.env.DISPATCH_BENCH_FLOOR_PROCESS, "utf8"));
const client = new DynamoDBClient({
  endpoint: spec.endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
});

// "Unchanged": every attribute of the image equal to its value in the image.
function deleteAsSeen(image) {
  const names = {};
  const values = {};
  const clauses = Object.keys(image).map((name, index) => {
    names[`#a${index}`] = name;
    values[`:v${index}`] = image[name];
    return `#a${index} = :v${index}`;
  });
  return {
    Delete: {
      TableName: spec.pending,
      Key: { userId: image.userId, sortKey: image.sortKey },
      ConditionExpression: clauses.join(" AND "),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
  };
}

async function dispatchRow(image) {
  const id = randomUUID();
  const offer = {
    ...spec.modelItem,
    personalizedOfferId: { S: id },
    userId: image.userId,
    sortKey: image.sortKey,
  };
  await client.send(
    new TransactWriteItemsCommand({
      TransactItems: [
        {
          Put: {
            TableName: spec.offers,
            Item: offer,
            ConditionExpression: "attribute_not_exists(personalizedOfferId)",
          },
        },
        deleteAsSeen(image),
      ],
    }),
  );
}

async function dispatch(images) {
  for (let start = 0; start < images.length; start += BATCH) {
    const batch = images.slice(start, start + BATCH);
    let next = 0;
    const worker = async () => {
      while (next < batch.length) {
        const image = batch[next++];
        await dispatchRow(image);
      }
    };
    await Promise.all(Array.from({ length: Math.min(spec.concurrency, batch.length) }, worker));
  }
}

async function main() {
  await dispatch(spec.warmUpItems);
  process.stdout.write("warm\n");
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === "go") break;
  }
  await dispatch(spec.rowItems);
  process.stdout.write("done\n");
  lines.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
