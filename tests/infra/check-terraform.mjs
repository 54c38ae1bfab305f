// Checks a Terraform configuration without a provider download or a cloud account:
//  - every file parses (HashiCorp's HCL parser, compiled to WebAssembly: @cdktf/hcl2json);
//  - every resource and data source type exists in the google provider's schema (6.50.0, read from the
//    generated type declarations of @cdktf/provider-google), every argument and nested block is one the schema
//    has, written as the kind it is (attribute or block), and every required argument is present;
//  - every var., local., module., data. and resource reference names something declared in the same module;
//  - every module call passes only declared variables and all required ones.
// Usage: node check-terraform.mjs <module dir> [--dump]
// Prints a JSON report {modules, resources, problems[, parsed]}; exits 1 when there are problems.
import { parse } from '@cdktf/hcl2json';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const providerLib = path.join(path.dirname(require.resolve('@cdktf/provider-google/package.json')), 'lib');
const providerVersion = JSON.parse(readFileSync(path.join(providerLib, '..', 'package.json'), 'utf8')).cdktf.provider.version;

const META_ARGUMENTS = new Set(['count', 'for_each', 'depends_on', 'provider', 'lifecycle', 'provisioner', 'connection']);
const problems = [];
const unique = list => [...new Set(list)];
const resources = [];
const modules = [];
const parsedModules = {};

const root = path.resolve(process.argv[2] ?? '.');
const dump = process.argv.includes('--dump');

// ---- the provider's schema, from the cdktf declarations ----------------------------------------------------------

const schemaCache = new Map();

function loadSchema(kind, type) {
  const key = `${kind}:${type}`;
  if (schemaCache.has(key)) return schemaCache.get(key);
  const bare = type.replace(/^google_/, '').replaceAll('_', '-');
  const dir = kind === 'data' ? `data-google-${bare}` : bare;
  const file = path.join(providerLib, dir, 'index.d.ts');
  const schema = existsSync(file) ? readDeclarations(readFileSync(file, 'utf8')) : null;
  schemaCache.set(key, schema);
  return schema;
}

// Interfaces → {name: {props: Map(snake → {required, block, typeName})}}; the *Config interface is the top level.
function readDeclarations(source) {
  const interfaces = new Map();
  const interfacePattern = /export interface (\w+)(?: extends [^{]+)? \{\n([\s\S]*?)\n\}/g;
  for (const match of source.matchAll(interfacePattern)) {
    const props = new Map();
    const propPattern = /\/\*\*([\s\S]*?)\*\/\s*readonly (\w+)(\?)?: ([^;]+);/g;
    for (const prop of match[2].matchAll(propPattern)) {
      const link = prop[1].match(/#([a-z0-9_]+) \w+#[a-z0-9_]+\}/);
      if (!link) continue;
      const typeText = prop[4];
      const typeName = (typeText.match(/\b([A-Z]\w+)\b/g) ?? []).find(t => t !== 'IResolvable') ?? null;
      props.set(link[1], {
        required: prop[3] !== '?',
        block: /^\s*\w[\w ]* block\s*$/m.test(prop[1].split('\n').map(l => l.replace(/^\s*\*\s?/, '')).join('\n')),
        typeName,
      });
    }
    interfaces.set(match[1], props);
  }
  const config = [...interfaces.keys()].find(n => n.endsWith('Config') && source.includes(`export interface ${n} extends cdktf.TerraformMetaArguments`));
  return config ? { interfaces, top: config } : null;
}

function checkBody(where, body, schema, interfaceName, topLevel) {
  const props = schema.interfaces.get(interfaceName);
  if (!props) {
    problems.push(`${where}: no schema for ${interfaceName}`);
    return;
  }
  for (const [name, value] of Object.entries(body)) {
    if (topLevel && META_ARGUMENTS.has(name)) continue;
    if (name === 'dynamic') {
      for (const [blockName, dynamics] of Object.entries(value)) {
        const prop = props.get(blockName);
        if (!prop?.block) problems.push(`${where}: dynamic "${blockName}" is not a block of this type`);
        else for (const dynamic of dynamics) for (const content of dynamic.content ?? []) checkBody(`${where}.${blockName}`, content, schema, prop.typeName, false);
      }
      continue;
    }
    const prop = props.get(name);
    if (!prop) {
      problems.push(`${where}: unknown argument "${name}" (google provider ${providerVersion})`);
      continue;
    }
    const writtenAsBlock = Array.isArray(value) && value.length > 0 && value.every(v => v !== null && typeof v === 'object' && !Array.isArray(v));
    if (prop.block && !writtenAsBlock) {
      problems.push(`${where}: "${name}" is a block, written as an attribute`);
    } else if (prop.block) {
      for (const element of value) checkBody(`${where}.${name}`, element, schema, prop.typeName, false);
    } else if (writtenAsBlock && !schema.interfaces.has(prop.typeName)) {
      problems.push(`${where}: "${name}" is an attribute, written as a block`);
    }
  }
  for (const [name, prop] of props) {
    if (prop.required && !(name in body) && !(body.dynamic && name in body.dynamic)) {
      problems.push(`${where}: required argument "${name}" is missing`);
    }
  }
}

// ---- modules ------------------------------------------------------------------------------------------------------

async function readModule(dir) {
  const merged = { variable: {}, locals: {}, resource: {}, data: {}, module: {}, output: {}, terraform: [], provider: {} };
  const files = readdirSync(dir).filter(f => f.endsWith('.tf')).sort();
  for (const file of files) {
    let parsed;
    try {
      parsed = await parse(file, readFileSync(path.join(dir, file), 'utf8'));
    } catch (error) {
      problems.push(`${path.relative(root, path.join(dir, file)) || file}: does not parse: ${String(error.message ?? error).trim()}`);
      continue;
    }
    for (const [kind, content] of Object.entries(parsed)) {
      if (kind === 'locals') for (const block of content) Object.assign(merged.locals, block);
      else if (kind === 'resource' || kind === 'data') {
        for (const [type, byName] of Object.entries(content)) {
          merged[kind][type] ??= {};
          Object.assign(merged[kind][type], byName);
        }
      } else if (kind === 'terraform') merged.terraform.push(...content);
      else if (kind in merged) Object.assign(merged[kind], content);
      else problems.push(`${file}: unexpected top-level block "${kind}"`);
    }
  }
  return { dir, files, ...merged };
}

function referencesIn(value, found = []) {
  if (typeof value === 'string') {
    for (const expr of value.matchAll(/\$\{([\s\S]*?)\}/g)) {
      const text = expr[1].replace(/"(?:[^"\\]|\\.)*"/g, '""');
      for (const ref of text.matchAll(/(?<![\w.])(var|local|module|data\.[a-z0-9_]+|google_[a-z0-9_]+)\.([A-Za-z_][\w-]*)/g)) found.push([ref[1], ref[2]]);
    }
  } else if (Array.isArray(value)) value.forEach(v => referencesIn(v, found));
  else if (value && typeof value === 'object') Object.values(value).forEach(v => referencesIn(v, found));
  return found;
}

async function checkModule(dir) {
  const mod = await readModule(dir);
  const label = path.relative(root, dir) || '.';
  modules.push(label);
  parsedModules[label] = mod;

  for (const kind of ['resource', 'data']) {
    for (const [type, byName] of Object.entries(mod[kind])) {
      const schema = loadSchema(kind, type);
      for (const [name, bodies] of Object.entries(byName)) {
        const where = `${label}: ${kind === 'data' ? 'data.' : ''}${type}.${name}`;
        resources.push({ module: label, kind, type, name });
        if (!type.startsWith('google_')) {
          problems.push(`${where}: only google provider types are checked; "${type}" is not one`);
          continue;
        }
        if (!schema) {
          problems.push(`${where}: no ${kind === 'data' ? 'data source' : 'resource type'} "${type}" in google provider ${providerVersion}`);
          continue;
        }
        for (const body of bodies) checkBody(where, body, schema, schema.top, true);
      }
    }
  }

  const declared = {
    var: new Set(Object.keys(mod.variable)),
    local: new Set(Object.keys(mod.locals)),
    module: new Set(Object.keys(mod.module)),
  };
  const everything = { locals: mod.locals, resource: mod.resource, data: mod.data, module: mod.module, output: mod.output };
  for (const [kind, name] of referencesIn(everything)) {
    if (kind === 'var' || kind === 'local' || kind === 'module') {
      if (!declared[kind].has(name)) problems.push(`${label}: reference to undeclared ${kind}.${name}`);
    } else if (kind.startsWith('data.')) {
      const type = kind.slice(5);
      if (!mod.data[type]?.[name]) problems.push(`${label}: reference to undeclared data.${type}.${name}`);
    } else if (!mod.resource[kind]?.[name]) {
      problems.push(`${label}: reference to undeclared resource ${kind}.${name}`);
    }
  }
  // versions.tf allows Terraform 1.6, where a variable's validation may refer to that variable only.
  for (const [name, blocks] of Object.entries(mod.variable)) {
    for (const block of blocks) for (const validation of block.validation ?? []) {
      for (const [kind, ref] of referencesIn(validation.condition ?? '')) {
        if (kind === 'var' && ref !== name) problems.push(`${label}: validation of var.${name} refers to var.${ref}`);
      }
    }
  }

  for (const [name, calls] of Object.entries(mod.module)) {
    for (const call of calls) {
      const source = call.source;
      if (typeof source !== 'string' || !source.startsWith('./')) {
        problems.push(`${label}: module.${name} must use a local source, got ${JSON.stringify(source)}`);
        continue;
      }
      const childDir = path.resolve(dir, source);
      if (!existsSync(childDir) || !statSync(childDir).isDirectory()) {
        problems.push(`${label}: module.${name} source ${source} does not exist`);
        continue;
      }
      const child = await checkModule(childDir);
      for (const arg of Object.keys(call)) {
        if (['source', 'version', 'providers', 'depends_on', 'count', 'for_each'].includes(arg)) continue;
        if (!(arg in child.variable)) problems.push(`${label}: module.${name} passes "${arg}", which ${source} does not declare`);
      }
      for (const [variable, blocks] of Object.entries(child.variable)) {
        if (blocks.every(b => !('default' in b)) && !(variable in call)) problems.push(`${label}: module.${name} omits required variable "${variable}"`);
      }
      const outputsUsed = JSON.stringify(everything).matchAll(new RegExp(`module\\.${name}\\.([A-Za-z_][\\w-]*)`, 'g'));
      for (const used of outputsUsed) if (!(used[1] in child.output)) problems.push(`${label}: module.${name}.${used[1]} is not an output of ${source}`);
    }
  }
  return mod;
}

await checkModule(root);
const report = { provider: `hashicorp/google ${providerVersion}`, modules, resources, problems: unique(problems) };
if (dump) report.parsed = parsedModules;
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exit(problems.length > 0 ? 1 : 0);
