// Verifies a received webhook with the reference Standard Webhooks implementation (the
// `standardwebhooks` package), as a receiver built on it would: reads {"headers": {...}, "body":
// "..."} on stdin, prints "verified" and exits 0, or prints the library's error and exits 1.
// Usage: node verify.mjs SECRET < MESSAGE_JSON
import { Webhook } from "standardwebhooks";

const [secret] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const message = JSON.parse(Buffer.concat(chunks).toString("utf8"));
try {
  const payload = new Webhook(secret).verify(message.body, message.headers);
  process.stdout.write(`verified ${JSON.stringify(payload)}\n`);
} catch (e) {
  process.stdout.write(`refused: ${e.message}\n`);
  process.exit(1);
}
