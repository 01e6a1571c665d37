// Regenerates ecs_fields.json from the npm package @elastic/ecs (the ECS field definitions):
//   npm pack @elastic/ecs@9.4.0 && tar xzf elastic-ecs-9.4.0.tgz
//   node elk/schema/extract_ecs_fields.js package > elk/schema/ecs_fields.json
// Only the field sets a log pipeline meets are kept (no security-analytics sets), as name -> type.
const path = require("path");
const pkg = path.resolve(process.argv[2] || "package");
const { EcsFlat } = require(path.join(pkg, "build/commonjs/ecs_flat.js"));
const { version } = require(path.join(pkg, "package.json"));

const FIELD_SETS = new Set([
  "@timestamp", "message", "tags", "labels", "agent", "client", "cloud", "container",
  "data_stream", "ecs", "error", "event", "host", "http", "log", "orchestrator", "process",
  "server", "service", "span", "trace", "transaction", "url", "user_agent",
]);
// Nested copies of whole field sets (process.parent.*, service.entity.*, ...) add nothing here.
const NESTED_COPIES = /\.(entity|parent|entry_leader|session_leader|group_leader|previous|origin\.entity|target\.entity|attested_user|attested_groups|hash|pe|elf|macho|code_signature|io|tty|user|group|real_user|real_group|saved_user|saved_group|supplemental_groups|env_vars|thread\.capabilities|risk|boot|disk|network|cpu)\./;

const fields = {};
for (const [name, def] of Object.entries(EcsFlat)) {
  if (!FIELD_SETS.has(name.split(".")[0]) || NESTED_COPIES.test(name)) continue;
  fields[name] = def.normalize && def.normalize.includes("array") ? [def.type] : def.type;
}
const sorted = Object.fromEntries(Object.keys(fields).sort().map((k) => [k, fields[k]]));
process.stdout.write(
  JSON.stringify({ ecs_version: version, source: `npm @elastic/ecs@${version}`, fields: sorted }, null, 1) + "\n",
);
