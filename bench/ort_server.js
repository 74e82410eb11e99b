// ONNX Runtime (the onnxruntime-node package, its own CPU build) as a child process of
// tools/ort_check.py and tools/ort_bench.py: one JSON request per stdin line, one JSON
// reply per stdout line, so that sessions and inputs stay loaded between requests.
//   {"op": "load", "model": PATH, "threads": T}             -> {"session": ID}
//   {"op": "input", "path": F32, "shape": [N, ...]}          -> {"input": ID}  (raw float32 file)
//   {"op": "logits", "session": ID, "inputs": {NAME: ID, ..}, "out": F32}
//                                                             -> {"rows": N}  (all N, 256 at a time)
//   {"op": "time", "session": ID, "inputs": {NAME: ID, ..}, "batch": B, "reps": R}
//                                                             -> {"seconds": [R per-call times]}
// NAME: a graph input ("image", and "masks" for a model written with export_onnx.py --masks).
// Usage: node bench/ort_server.js ORT_DIR  (ORT_DIR holds node_modules/onnxruntime-node:
// `npm install --ignore-scripts onnxruntime-node` there; keep it out of git, e.g. build/ort)
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

if (process.argv.length !== 3) {
  process.stderr.write('usage: node bench/ort_server.js ORT_DIR\n');
  process.exit(2);
}
const ort = require(path.resolve(process.argv[2], 'node_modules', 'onnxruntime-node'));
const sessions = [];
const inputs = [];

// Rows first .. first + batch - 1 of each named input, as ORT feeds.
function feeds(named, first, batch) {
  const out = {};
  for (const [name, id] of Object.entries(named)) {
    const { data, shape } = inputs[id];
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    out[name] = new ort.Tensor('float32', data.subarray(first * per, (first + batch) * per), [batch, ...shape.slice(1)]);
  }
  return out;
}

async function handle(req) {
  if (req.op === 'load') {
    sessions.push(await ort.InferenceSession.create(req.model, {
      intraOpNumThreads: req.threads, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    }));
    return { session: sessions.length - 1 };
  }
  if (req.op === 'input') {
    const bytes = fs.readFileSync(req.path);
    const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    if (data.length !== req.shape.reduce((a, b) => a * b, 1)) throw new Error(`"${req.path}": size is not ${req.shape}`);
    inputs.push({ data, shape: req.shape });
    return { input: inputs.length - 1 };
  }
  const session = sessions[req.session];
  if (req.op === 'logits') {
    const n = inputs[Object.values(req.inputs)[0]].shape[0];
    const chunks = [];
    for (let first = 0; first < n; first += 256) {
      const out = await session.run(feeds(req.inputs, first, Math.min(256, n - first)));
      const logits = out[session.outputNames[0]].data;  // a Float32Array, maybe a view
      chunks.push(Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
    }
    fs.writeFileSync(req.out, Buffer.concat(chunks));
    return { rows: n };
  }
  if (req.op === 'time') {
    const batch = feeds(req.inputs, 0, req.batch);
    const seconds = [];
    for (let r = 0; r < req.reps; ++r) {
      const start = process.hrtime.bigint();
      await session.run(batch);
      seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
    }
    return { seconds };
  }
  throw new Error(`unknown op "${req.op}"`);
}

// Requests are handled one at a time, in order.
let queue = Promise.resolve();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  queue = queue.then(async () => {
    let reply;
    try {
      reply = await handle(JSON.parse(line));
    } catch (e) {
      reply = { error: String(e.message || e) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
});
