// Validates every document in etc/k8s/*.yaml against the Kubernetes OpenAPI schemas bundled in
// the npm package kubernetes-models (each model class's validate(), Ajv underneath).
//
// The packages are installed on first use, pinned, into a cache folder (like the storage tests'
// s3rver): $VSIEVE_K8S_SCHEMA_DIR, else $XDG_CACHE_HOME/vsieve-test-k8s-schema/<versions>, else
// ~/.cache/vsieve-test-k8s-schema/<versions>. Prints one line per document:
//   <file>#<n> <apiVersion>/<kind> <name> ok|INVALID: <errors>|UNKNOWN KIND
// Exit 0 when all are valid, 1 on any invalid document, unknown kind, YAML error or failed
// install, 77 (skipped) when npm is missing or the install fails for lack of network.
//
// Usage: node k8s_schema_check.mjs REPO_ROOT [MANIFEST_DIR]   (MANIFEST_DIR: default etc/k8s)
//
// kubernetes-models 4.5.1 is the newest release that runs on Debian 12's Node.js 18 (5.x asks
// for Node >= 22). The schemas do not forbid unknown fields, so a misspelt optional key passes
// here; tests/etc/k8s_manifests_test.py checks that the fields the README names are present.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

const PACKAGES = { "kubernetes-models": "4.5.1", yaml: "2.9.1" };
const SKIP = 77;

function cacheDir() {
  const override = process.env.VSIEVE_K8S_SCHEMA_DIR;
  if (override) return override;
  const versions = Object.entries(PACKAGES).map(([n, v]) => `${n}-${v}`).join("+");
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg ? xdg : process.env.HOME ? path.join(process.env.HOME, ".cache") : os.tmpdir();
  return path.join(base, "vsieve-test-k8s-schema", versions);
}

function installedVersion(dir, name) {
  try {
    const file = path.join(dir, "node_modules", name, "package.json");
    return JSON.parse(fs.readFileSync(file, "utf8")).version;
  } catch {
    return null;
  }
}

function isInstalled(dir) {
  return Object.entries(PACKAGES).every(([n, v]) => installedVersion(dir, n) === v);
}

const NETWORK_ERROR =
  /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ENETDOWN|ESOCKETTIMEDOUT|ERR_SOCKET_TIMEOUT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)\b|npm (ERR!|error) network/;

// Returns the folder holding node_modules, or exits (77 or 1) when it cannot be installed.
function ensureInstalled() {
  const dir = cacheDir();
  if (isInstalled(dir)) return dir;
  const npm = spawnSync("npm", ["--version"], { encoding: "utf8" });
  if (npm.error || npm.status !== 0) {
    console.log("SKIP: npm is not installed (scripts/install-deps.sh installs nodejs and npm)");
    process.exit(SKIP);
  }
  // Install into a fresh folder beside the target and rename it into place, so that two runs at
  // once never see a half-installed tree (the loser of the rename drops its copy).
  const viaRename = !process.env.VSIEVE_K8S_SCHEMA_DIR;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const target = viaRename ? fs.mkdtempSync(`${dir}.tmp-`) : dir;
  fs.mkdirSync(target, { recursive: true });
  const specs = Object.entries(PACKAGES).map(([n, v]) => `${n}@${v}`);
  console.log(`installing ${specs.join(" ")} into ${dir}`);
  const run = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--prefix", target, ...specs],
    { encoding: "utf8", timeout: 240_000 });
  const output = `${run.stdout ?? ""}${run.stderr ?? ""}${run.error ? String(run.error) : ""}`;
  if (run.status === 0 && isInstalled(target)) {
    if (viaRename) {
      try {
        fs.renameSync(target, dir);
      } catch {
        fs.rmSync(target, { recursive: true, force: true });
        if (!isInstalled(dir)) {
          console.log(`FAIL: cannot move the install into ${dir}`);
          process.exit(1);
        }
      }
    }
    return dir;
  }
  if (viaRename) fs.rmSync(target, { recursive: true, force: true });
  const timedOut = run.error && run.error.code === "ETIMEDOUT";
  const why = timedOut ? "npm install timed out" : `npm install exited ${run.status}`;
  const summary = output.trim().split("\n").slice(0, 4).join(" | ");
  if (timedOut || NETWORK_ERROR.test(output)) {
    console.log(`SKIP: ${why}, no network to the npm registry: ${summary}`);
    process.exit(SKIP);
  }
  console.log(`FAIL: ${why}: ${output.trim().slice(-3000)}`);
  process.exit(1);
}

function formatErrors(error) {
  // kubernetes-models throws a ValidationError whose details are Ajv's errors.
  const details = Array.isArray(error?.details) ? error.details : null;
  if (details && details.length > 0) {
    return details
      .map((d) => `${d.instancePath || "/"} ${d.message}${d.params ? " " + JSON.stringify(d.params) : ""}`)
      .join("; ");
  }
  return String(error?.message ?? error).replace(/\s+/g, " ");
}

function main() {
  const [root, manifestArg] = process.argv.slice(2);
  if (!root) {
    console.log("usage: node k8s_schema_check.mjs REPO_ROOT [MANIFEST_DIR]");
    process.exit(2);
  }
  const manifestDir = manifestArg ? path.resolve(manifestArg) : path.join(root, "etc", "k8s");
  const files = fs.readdirSync(manifestDir).filter((f) => /\.ya?ml$/.test(f)).sort();
  if (files.length === 0) {
    console.log(`FAIL: no *.yaml in ${manifestDir}`);
    process.exit(1);
  }

  const require = createRequire(path.join(ensureInstalled(), "package.json"));
  const YAML = require("yaml");
  console.log(`kubernetes-models ${PACKAGES["kubernetes-models"]}, yaml ${PACKAGES.yaml}, ` +
    `node ${process.version}`);

  let bad = 0;
  let count = 0;
  for (const file of files) {
    const text = fs.readFileSync(path.join(manifestDir, file), "utf8");
    // YAML 1.1, as Kubernetes' own parser reads manifests (yes/no are booleans there).
    const docs = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true });
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((doc, i) => {
      const where = `${file}#${i + 1}`;
      if (doc.errors.length > 0) {
        const messages = doc.errors.map((e) => e.message.split("\n")[0]).join("; ");
        console.log(`${where} - - YAML ERROR: ${messages}`);
        count++;
        bad++;
        return;
      }
      const obj = doc.toJS();
      if (obj === null || obj === undefined) return;  // an empty document (comments only)
      count++;
      if (typeof obj !== "object" || Array.isArray(obj)) {
        console.log(`${where} - - INVALID: the document is not a mapping`);
        bad++;
        return;
      }
      const { apiVersion, kind } = obj;
      const name = obj.metadata?.name ?? "-";
      const label = `${where} ${apiVersion}/${kind} ${name}`;
      // apiVersion is "v1" or "<group>/<version>"; both name a folder of kubernetes-models.
      const known = typeof apiVersion === "string" && typeof kind === "string" &&
        /^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) && /^[A-Z][A-Za-z0-9]*$/.test(kind);
      let Model = null;
      if (known) {
        try {
          Model = require(`kubernetes-models/${apiVersion}/${kind}`)[kind];
        } catch {
          Model = null;
        }
      }
      if (typeof Model !== "function" || Model.apiVersion !== apiVersion || Model.kind !== kind) {
        console.log(`${label} UNKNOWN KIND (no kubernetes-models class for ${apiVersion} ${kind})`);
        bad++;
        return;
      }
      try {
        new Model(obj).validate();
        console.log(`${label} ok`);
      } catch (error) {
        console.log(`${label} INVALID: ${formatErrors(error)}`);
        bad++;
      }
    });
  }
  if (count === 0) {
    console.log("FAIL: no documents");
    process.exit(1);
  }
  console.log(bad === 0 ? `${count} documents valid` : `${bad} of ${count} documents rejected`);
  process.exit(bad === 0 ? 0 : 1);
}

main();
