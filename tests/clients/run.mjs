// Load an exported model folder with transformers.js and print what it computes, as JSON on stdout.
//
//   node run.mjs <tjs3|tjs4> <folder> <task> [new_tokens] [dtype]
//
// <folder> is laid out as the bot's pull request leaves a repository: config.json, the tokenizer
// files and onnx/ (model.onnx, or encoder_model.onnx + decoder_model_merged.onnx). Tasks:
//   text-generation       greedy decoding of a causal LM: {"input_ids": [...], "tokens": [...],
//                         "logits": [...], "logits_dims": [1, n, vocab]} (one forward pass over "tokens")
//   text2text-generation  greedy decoding of a seq2seq LM: the same (the decoder fed "tokens")
//   text-classification   {"input_ids": [...], "logits": [...], "label": "...", "score": ...}
//   speech2seq-generation greedy decoding of Whisper from <folder>/input_features.json
//                         ({"dims": [...], "data": [...]}, log-mel frames; no tokenizer): {"tokens": [...]}
// dtype (default fp32) picks the file as transformers.js does: q8 → model_quantized.onnx, fp16 → model_fp16.onnx.
// Nothing is fetched: remote models are off and the folder is read as a local model.
import path from "node:path";

const [library, folder, task, newTokens = "8", dtype = "fp32"] = process.argv.slice(2);
const PROMPT = "the model reads a tiny random text";
const tjs = await import(library);
const { env, AutoTokenizer, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, pipeline } = tjs;
const { AutoModelForSpeechSeq2Seq, Tensor } = tjs;
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.dirname(path.resolve(folder));
const id = path.basename(path.resolve(folder));
const options = { dtype, device: "cpu", local_files_only: true };

if (task === "speech2seq-generation") {
  const { readFile } = await import("node:fs/promises");
  const features = JSON.parse(await readFile(path.join(folder, "input_features.json"), "utf8"));
  const model = await AutoModelForSpeechSeq2Seq.from_pretrained(id, options);
  const inputs = new Tensor("float32", Float32Array.from(features.data), features.dims);
  const output = await model.generate({ inputs, max_new_tokens: Number(newTokens), do_sample: false, num_beams: 1 });
  process.stdout.write(JSON.stringify({ tokens: Array.from(output.data, Number) }) + "\n");
  process.exit(0);
}

// One forward pass over the generated sequence (the decoder's, for seq2seq), from an empty past:
// the logits at every position, as the report's top-1 agreement judges them.
async function teacherForced(model, inputs, output) {
  const forced = task === "text-generation"
    ? { input_ids: output, attention_mask: tjs.ones(output.dims) }
    : { ...inputs, decoder_input_ids: output };
  const { logits } = await model(forced);
  return { logits: Array.from(logits.data, Number), logits_dims: logits.dims };
}

const tokenizer = await AutoTokenizer.from_pretrained(id, { local_files_only: true });
const inputs = await tokenizer(PROMPT);
const inputIds = Array.from(inputs.input_ids.data, Number);
let result;
if (task === "text-generation" || task === "text2text-generation") {
  const auto = task === "text-generation" ? AutoModelForCausalLM : AutoModelForSeq2SeqLM;
  const model = await auto.from_pretrained(id, options);
  const output = await model.generate({ ...inputs, max_new_tokens: Number(newTokens), do_sample: false, num_beams: 1 });
  result = { input_ids: inputIds, tokens: Array.from(output.data, Number), ...(await teacherForced(model, inputs, output)) };
} else if (task === "text-classification") {
  const model = await AutoModelForSequenceClassification.from_pretrained(id, options);
  const { logits } = await model(inputs);
  const classify = await pipeline("text-classification", id, options);
  const [best] = await classify(PROMPT);
  result = { input_ids: inputIds, logits: Array.from(logits.data, Number), label: best.label, score: best.score };
} else {
  throw new Error(`unknown task ${task}`);
}
process.stdout.write(JSON.stringify(result) + "\n");
