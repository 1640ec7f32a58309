// Types of the embeddable API in tabtune.js.

/** The compute device the worker selected. */
export interface DeviceInfo {
  backend: 'webgpu' | 'cpu';
  adapter: { vendor: string; architecture: string; device: string; description: string; software: boolean } | null;
  /** Why the CPU is used although WebGPU was asked for or preferred. */
  fallback_reason: string | null;
  /** On WebGPU, the largest buffer the device takes (bytes): bounds the training micro-batch. */
  max_buffer_bytes?: number;
}

/** Bytes as a URL (fetched), the bytes themselves, or a File/Blob. */
export type Bytes = string | URL | Uint8Array | ArrayBuffer | Blob;

/** Where a model comes from. */
export type ModelSource =
  /** One of the bundled defaults in assets/index.json: 'mobilenet_v2', 'all-MiniLM-L6-v2', ... */
  | string
  /** An image model: safetensors or PyTorch .pth weights (+ config.json of a fine-tuned one). */
  | { kind: 'image'; weights: Bytes; config?: Bytes; name?: string }
  /** A text (BERT) model: weights + config.json + tokenizer.json; `extras` are copied into exports. */
  | { kind: 'text'; weights: Bytes; config: Bytes; tokenizer: Bytes; extras?: Record<string, Bytes>; name?: string }
  /** An audio model: the speech_embedding network's safetensors (+ config.json of a fine-tuned one). */
  | { kind: 'audio'; weights: Bytes; config?: Bytes; name?: string }
  /** A folder URL holding config.json (+ model.safetensors, tokenizer.json), or a Hugging Face
   *  repository URL (https://huggingface.co/owner/name) resolved to its files. */
  | { url: string }
  /** A model saved in this browser with `save()`. */
  | { saved: string };

/** What the model is, before training. */
export interface ModelInfo {
  kind: 'image' | 'text' | 'audio' | 'series' | 'transcription';
  name: string;
  /** e.g. mobilenet_v2, bert. */
  arch: string;
  parameters: number;
  tensors: number;
  /** Size of the weights file in bytes. */
  bytes: number;
  /** Outputs of the classifier the file holds (1000 for ImageNet), null for an encoder alone. */
  outputs: number | null;
  /** Class names when the model is a fine-tuned one (config.json id2label). */
  classes: string[] | null;
  /** Series models: the channels the network reads, its rate, fixed window and normalisation. */
  series_input?: { channels: string[]; rate_hz: number | null; window: number | null; mean: number[]; std: number[]; units?: string };
  /** Series models: what the network gives. */
  series_output?:
    | { kind: 'classes'; labels: string[]; activation?: string }
    | { kind: 'values'; names: string[]; mean?: number[]; std?: number[]; per_step: boolean; loss?: 'mse' | 'huber' | 'attitude' };
  /** With a LoRA adapter put onto the model (`loadAdapter`): the layers it adapts. */
  adapter_layers?: number;
}

/** An image dataset: items are URLs or Files, decoded in the worker one batch at a time. */
export interface ImageDataset {
  kind: 'image';
  /** Class names in label order (default: the sorted distinct labels of `items`). */
  classes?: string[];
  items: { label: string | number; source: string | URL | Blob; name?: string }[];
  /** Fixed (train, validation) indices into items; default: the recipe's stratified split. */
  split?: { train: number[]; val: number[] };
}

/** A text dataset: one CSV/TSV/JSONL table. */
export interface TextDataset {
  kind: 'text';
  data: Bytes;
  /** File name: its extension tells the format; it names the file in messages. */
  name?: string;
  /** Chosen columns (detected from common names when left out); `per_class` keeps the first N. */
  columns?: { text?: string; label?: string; per_class?: number };
}

/** An audio dataset: files (WAV 8/16/24/32-bit integer or float, MP3, OGG/Vorbis, FLAC; any
 *  rate and channels, decoded and resampled to 16 kHz mono in the core) or recorded samples.
 *  Cut into windows of the recipe's `audio.window` seconds when training starts. */
export interface AudioDataset {
  kind: 'audio';
  /** Class names in label order (default: the sorted distinct labels). */
  classes?: string[];
  items: ({ label: string; source: string | URL | Blob | Bytes; name?: string } | { label: string; samples: Float32Array; rate: number; name?: string })[];
}

/** A series dataset: recordings as CSV/TSV/JSONL text (or a File, bytes, URL as `data`) of
 *  timestamped samples, with channel columns and a label column (classes) or target columns
 *  (values). `group` (a person, a device) keeps a group's recordings on one side of the split;
 *  `val: true` puts a recording in the validation set. */
export interface SeriesDataset {
  kind: 'series';
  recordings: { name?: string; group?: string; text?: string; data?: Bytes | Blob | string | URL; val?: boolean }[];
}

/** Transcribed audio (speech recognition): the files of a set with their relative paths as
 *  names: a metadata.csv (file_name, transcription) or a .jsonl of {audio, text} with the
 *  audio files it names, or x.wav beside x.txt; train/ and val/ folders are a given split. */
export interface TranscriptionDataset {
  kind: 'transcription';
  files: { name?: string; data: Bytes | Blob | string | URL }[];
}

/** What a speech recogniser heard in one clip. */
export interface Transcript {
  name: string;
  text: string;
  seconds: number;
}

/** Word and character error rates (Whisper's basic normaliser), over a set and per clip. */
export interface ErrorRates {
  wer: number;
  cer: number;
  count: number;
  examples: { name: string; reference: string; hypothesis: string; wer: number; cer: number }[];
}

/** What setDataset / addData found. */
export interface DatasetSummary {
  kind: 'image' | 'text' | 'audio' | 'series' | 'transcription';
  classes: string[];
  /** Examples per class, in `classes` order. */
  counts: number[];
  total: number;
  /** Tiny or unbalanced classes, rows left out, ... in words. */
  warnings: string[];
  /** Text only: the table's columns and the two in use. */
  columns?: string[];
  text_column?: string;
  label_column?: string;
  /** Text only: the first rows as {text, label}. */
  preview?: { text: string; label: string }[];
  /** Rows left out, as [file:line, reason]. */
  skipped?: [string, string][];
}

/** A progress event of a training run. */
export type Progress =
  | { kind: 'features'; done: number; total: number; throughput: number; eta_s: number }
  | { kind: 'step'; phase: string; epoch: number; step: number; total_steps: number; loss: number; throughput: number; eta_s: number }
  | { kind: 'epoch'; phase: string; epoch: number; train_loss: number; val_accuracy: number | null }
  /** A phase ended; its report. */
  | { kind: 'phase_end'; phase: string; report: PhaseReport }
  /** Something to know: an example left out (unreadable), with the reason. */
  | { kind: 'warning'; message: string }
  /** The API saved a checkpoint that resume() can continue from: after the head phase, or
   *  (`epoch`) after that epoch of the fine-tuning phase; `error` when it could not be kept. */
  | { kind: 'checkpoint'; phase: string; epoch?: number | null; error?: string };

export interface PhaseReport {
  phase: 'head' | 'finetune';
  losses: number[];
  val_accuracy: number[];
  best_epoch: number;
  stopped_early: boolean;
  train_rows: number;
  val_rows: number;
  seconds: number;
  throughput: number;
  /** Examples through the model at once (the recipe's memory_mib decides; the batch's
   *  gradients are summed over them). */
  micro_batch: number;
  /** The GPU memory pool's largest size during the phase; null on the CPU backend. */
  peak_device_bytes: number | null;
}

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Metrics {
  count: number;
  accuracy: number;
  macro_f1: number;
  per_class: ClassMetrics[];
  /** confusion[truth][predicted] counts. */
  confusion: number[][];
}

/** How far a regression's outputs are from the truth on the validation recordings. */
export interface RegressionMetrics {
  names: string[];
  rmse: number[];
  mae: number[];
  /** Orientation quaternions (the `attitude` loss): degrees between the predicted and true gravity. */
  attitude: { mean: number; rms: number; p95: number } | null;
  /** Values scored per output. */
  scored: number;
  /** Per output, up to 400 [true, predicted] pairs spread over the scored values. */
  points: [number, number][][];
}

/** What a series model predicts on one recording. */
export type SeriesPrediction =
  /** Class probabilities of each window (half a window apart) by its start in seconds. */
  | { kind: 'classes'; name: string; labels: string[]; windows: [number, number[]][] }
  /** The outputs at every step (per-step networks) or of each window, `step_s` apart. */
  | { kind: 'values'; name: string; names: string[]; step_s: number; values: number[][] };

/** A validation example the kept model got wrong. */
export interface Miss {
  /** Image name, or file:line of a text row. */
  name: string;
  /** Text rows: the text. */
  text: string | null;
  truth: string;
  predicted: string;
}

export interface RunReport {
  classes: string[];
  arch: string;
  train_images: number;
  val_images: number;
  features: [number, number] | null;
  phases: PhaseReport[];
  metrics: Metrics | null;
  misclassified: Miss[];
  /** A resumed run: where its checkpoint was taken ("head", "finetune epoch 2"). */
  resumed_after?: string;
  skipped: [string, string][];
  truncated: number;
  /** Series regressions: the error after training and of the model before it. */
  regression?: RegressionMetrics | null;
  regression_before?: RegressionMetrics | null;
  /** Speech recognisers: the validation clips' error rates after training and before it. */
  transcription?: ErrorRates | null;
  transcription_before?: ErrorRates | null;
}

export interface Scored {
  label: string;
  probability: number;
}

/** A model saved in this browser. */
export interface SavedModel {
  name: string;
  kind: 'image' | 'text' | 'audio' | 'series' | 'transcription';
  arch: string;
  classes: string[];
  saved_at: string;
  bytes: number;
  /** 'opfs' or 'indexeddb'. */
  store: string;
}

/** A run stopped (reload, closed tab) after its checkpoint: resume() continues it. */
export interface PendingRun {
  model: string;
  kind: 'image' | 'text' | 'audio';
  phase: string;
  /** The fine-tuning epoch after which it was taken; null after the head phase. */
  epoch: number | null;
  saved_at: string;
  recipe: Recipe;
}

/** The full recipe (see README): every field, defaults filled in. */
export type Recipe = Record<string, any>;

/** What a recipe's low-rank adapters would train (`FineTuner.loraPlan`). */
export interface LoraPlan {
  /** Layers that get an adapter. */
  layers: number;
  /** The adapters' parameters. */
  adapter_params: number;
  /** The new head's parameters (PEFT's modules_to_save). */
  head_params: number;
  /** Every parameter of the model. */
  model_params: number;
  /** The adapter folder's weights in bytes (float32), about. */
  adapter_bytes: number;
}

export class FineTuner {
  /** Start the worker and its device, then load `model`. */
  static create(options: {
    model: ModelSource;
    device?: 'auto' | 'gpu' | 'cpu';
    workerUrl?: string | URL;
  }): Promise<FineTuner>;
  readonly device: DeviceInfo;
  readonly model: ModelInfo;
  /** The recipe defaults for this model's kind. */
  defaultRecipe(): Promise<Recipe>;
  /** The recipe with defaults filled in, or a rejected promise naming the bad field. With a
   *  dataset set, a batch larger than the training rows is refused too. */
  checkRecipe(recipe?: Recipe): Promise<Recipe>;
  /** What the recipe's low-rank adapters (`finetune.lora`) would train on this model, before
   *  training: `null` for a recipe without them; rejected naming targets that match no layer. */
  loraPlan(recipe?: Recipe): Promise<LoraPlan | null>;
  /** Put a PEFT adapter folder (made by PEFT or exported here) onto the loaded model: it then
   *  predicts with the adapter (classes by index when the folder names none) and trains it
   *  further. Replaces an adapter loaded before; one that does not fit is an error naming why,
   *  and the model stays as it was. */
  loadAdapter(adapter: { config: Bytes; weights: Bytes; name?: string }): Promise<ModelInfo>;
  /** Replace the dataset. Image items reach the worker in chunks of 200; `onProgress(done,
   *  total)` follows them. */
  setDataset(dataset: ImageDataset | TextDataset | AudioDataset | SeriesDataset | TranscriptionDataset, options?: { onProgress?: (done: number, total: number) => void }): Promise<DatasetSummary>;
  /** Add images of one class (by hand, webcam frames) to the image dataset. */
  addData(label: string, images: (Blob | string | URL)[]): Promise<DatasetSummary>;
  /** Train per `recipe` (fields over the defaults). With a fine-tuning phase, saves a
   *  checkpoint after the head phase and after every fine-tuning epoch but the last. Resolves
   *  to the run's report. */
  train(recipe?: Recipe, options?: { onProgress?: (event: Progress) => void; signal?: AbortSignal }): Promise<RunReport>;
  /** The kept model's validation metrics and misclassified examples of the last run. */
  evaluate(): Promise<{ metrics: Metrics | null; misclassified: Miss[]; classes: string[]; skipped: [string, string][]; regression?: RegressionMetrics | null }>;
  /** The GPU memory pool once its free pages are returned (null on the CPU) and the wasm heap. */
  memory(): Promise<{ device: { in_use_bytes: number; reserved_bytes: number; allocations: number } | null; wasm_bytes: number }>;
  /** Top classes of one text, image or audio clip (most probable first; a clip longer than
   *  the window: the mean over its windows), or of each text of an array. */
  predict(input: string | Blob | ImageBitmap | URL | Float32Array | { samples: Float32Array; rate: number }): Promise<Scored[]>;
  predict(input: string[]): Promise<Scored[][]>;
  /** A series model: one recording (CSV/TSV/JSONL text, or {name, text | data}), or several. */
  predict(input: string | { name?: string; text?: string; data?: Bytes | Blob | URL }): Promise<SeriesPrediction>;
  predict(input: ({ name?: string; text?: string; data?: Bytes | Blob | URL })[]): Promise<SeriesPrediction[]>;
  /** A speech recogniser: the transcript of a clip (a file, bytes, URL, or recorded
   *  {samples, rate}), or of each of several; `{original: true}`: by the loaded model as it
   *  came (to set beside a fine-tuned one's). */
  predict(input: Blob | Bytes | URL | { samples: Float32Array; rate: number }, options?: { original?: boolean }): Promise<Transcript>;
  /** The fine-tuned model as a Hugging Face-style folder: its files and the same as a zip.
   *  report.json holds nothing from the dataset unless `examples` is true. After a LoRA run
   *  the folder has the merged model.safetensors and PEFT's `adapter/adapter_config.json` and
   *  `adapter/adapter_model.safetensors`; `adapterOnly` leaves the merged weights out. */
  export(options?: { examples?: boolean; adapterOnly?: boolean; signal?: AbortSignal }): Promise<{ files: Record<string, Uint8Array>; zip: Blob }>;
  /** Save the fine-tuned model in this browser (OPFS, else IndexedDB); resolves to its name. */
  save(name?: string): Promise<string>;
  /** Continue the run whose checkpoint was saved (after a reload) from its last checkpoint, to
   *  the weights it would have had uninterrupted. The pending run is forgotten when it
   *  finishes; a cancelled or failed resume keeps it (with the checkpoints it made). */
  resume(options?: { onProgress?: (event: Progress) => void; signal?: AbortSignal }): Promise<RunReport>;
  /** Stop the worker; pending calls are rejected. */
  terminate(): void;

  /** Models saved in this browser. */
  static saved(): Promise<SavedModel[]>;
  /** Delete a saved model. */
  static remove(name: string): Promise<void>;
  /** A run that stopped after its checkpoint, if any. */
  static pendingRun(): Promise<PendingRun | null>;
  /** Forget the pending run. */
  static discardRun(): Promise<void>;
  /** The bundled models and datasets (assets/index.json), [] when the page has none. */
  static bundled(): Promise<{ models: any[]; datasets: any[] }>;
}

/** The wasm core's own bindings (the worker uses them; pages normally do not). */
export type { Session } from './pkg/tabtune.js';
