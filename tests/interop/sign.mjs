// Signs a message with the reference Standard Webhooks implementation (the `standardwebhooks`
// package), as a sender built on it would: prints the three headers, one per line, as
// "name: value". Usage: node sign.mjs SECRET MSG_ID UNIX_SECONDS < BODY
import { Webhook } from "standardwebhooks";

const [secret, id, seconds] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const body = Buffer.concat(chunks).toString("utf8");
const timestamp = new Date(Number(seconds) * 1000);
const signature = new Webhook(secret).sign(id, timestamp, body);
process.stdout.write(`webhook-id: ${id}\nwebhook-timestamp: ${seconds}\nwebhook-signature: ${signature}\n`);
