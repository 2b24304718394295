// Validates events (one JSON object per line) against docs/events.schema.json with Ajv (JSON Schema 2020-12).
// Usage: node validate_events.js SCHEMA EVENTS.jsonl. Prints each invalid line with Ajv's errors; exit 1 if any.
'use strict';
const fs = require('fs');
const path = require('path');

const [schemaPath, eventsPath] = process.argv.slice(2);
if (!schemaPath || !eventsPath) {
  console.error('usage: node validate_events.js SCHEMA EVENTS.jsonl');
  process.exit(2);
}
let Ajv2020;
try {
  // Resolved from the repository's node_modules (npm dev tools, installed by scripts/setup).
  Ajv2020 = require(require.resolve('ajv/dist/2020', { paths: [path.join(__dirname, '..', '..')] }));
} catch (e) {
  console.error('ajv is not installed: run scripts/setup (npm ci) in the repository');
  process.exit(3);
}
const ajv = new Ajv2020({ allErrors: true, strict: true });
const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaPath, 'utf8')));

let bad = 0, n = 0;
fs.readFileSync(eventsPath, 'utf8').split('\n').forEach((line, i) => {
  if (!line.trim()) return;
  n++;
  const ev = JSON.parse(line);
  if (validate(ev)) return;
  bad++;
  // oneOf reports every branch; the definition named by the event's type says what is wrong.
  const own = typeof ev.type === 'string' && ajv.getSchema(`events.schema.json#/$defs/${ev.type}`);
  const errs = own && !own(ev) ? own.errors : validate.errors;
  console.log(`line ${i + 1} (${ev.type}): invalid`);
  for (const e of errs) console.log(`  ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
});
console.log(`${n - bad} of ${n} events valid`);
process.exit(bad ? 1 : 0);
