// Types of the embeddable API in tabtune.js.

/** The compute device the worker selected. */
export interface DeviceInfo {
  backend: 'webgpu' | 'cpu';
  adapter: { vendor: string; architecture: string; device: string; description: string; software: boolean } | null;
  /** Why the CPU is used although WebGPU was asked for or preferred. */
  fallback_reason: string | null;
}

/** A progress event of a training run. */
export type Progress =
  | { kind: 'features'; done: number; total: number; throughput: number; eta_s: number }
  | { kind: 'step'; phase: string; epoch: number; step: number; total_steps: number; loss: number; throughput: number; eta_s: number }
  | { kind: 'epoch'; phase: string; epoch: number; train_loss: number; val_accuracy: number | null };

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
}

export interface Metrics {
  accuracy: number;
  macro_f1: number;
  [key: string]: unknown;
}

export interface RunReport {
  classes: string[];
  arch: string;
  train_images: number;
  val_images: number;
  features: [number, number] | null;
  phases: PhaseReport[];
  metrics: Metrics | null;
  skipped: [string, string][];
  truncated: number;
}

export interface Finetuned {
  report: RunReport;
  /** model.safetensors (Hugging Face BertForSequenceClassification names for text). */
  model: Uint8Array;
  /** config.json text with id2label. */
  config: string;
}

export interface Scored {
  label: string;
  probability: number;
}

type Bytes = string | URL | Uint8Array | ArrayBuffer | Blob;

export class FineTuner {
  static create(options?: { device?: 'auto' | 'gpu' | 'cpu'; workerUrl?: string | URL }): Promise<FineTuner>;
  readonly device: DeviceInfo;
  finetuneText(options: {
    model: { weights: Bytes; config: Bytes; tokenizer: Bytes; name?: string };
    /** CSV/TSV/JSONL as a URL, bytes, a File, or the text itself. */
    data: Bytes;
    /** File name telling the format (.csv, .tsv, .jsonl) and naming it in messages. */
    name?: string;
    columns?: { text?: string; label?: string; per_class?: number };
    /** Recipe fields over the text defaults (see README). */
    recipe?: Record<string, unknown>;
    onProgress?: (event: Progress) => void;
    signal?: AbortSignal;
  }): Promise<Finetuned>;
  finetuneImages(options: {
    weights: Bytes;
    name?: string;
    dataset: {
      classes: string[];
      items: { name: string; label: number; source: string | URL | Blob }[];
      split?: { train: number[]; val: number[] };
    };
    recipe?: Record<string, unknown>;
    onProgress?: (event: Progress) => void;
    signal?: AbortSignal;
  }): Promise<Finetuned>;
  predictText(texts: string | string[]): Promise<Scored[][]>;
  predictImage(image: ImageBitmap | Blob | string | URL): Promise<Scored[]>;
  terminate(): void;
}
