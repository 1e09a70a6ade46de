// Validates one glTF/GLB file with the Khronos validator and prints its report as JSON on stdout.
// Usage: node validate.mjs FILE.glb   (exit 0 when the file could be read; the report says the rest)
import { readFile } from "node:fs/promises";
import validator from "gltf-validator";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs FILE.glb");
  process.exit(2);
}
const data = new Uint8Array(await readFile(path));
const report = await validator.validateBytes(data, { maxIssues: 200 });
console.log(JSON.stringify(report));
