// The microphone for audio models: getUserMedia and an AudioWorklet (mic-worklet.js) hand the
// page mono samples at the AudioContext's rate; the page keeps the last 30 s, shows the level,
// records clips of a given length and gives the live try its sliding window. The samples go
// to the tabtune worker with their rate (the core resamples to 16 kHz), nowhere else.
const WORKLET = new URL('./mic-worklet.js', import.meta.url);
const KEEP_S = 30;

export class Mic {
  #stream;
  #context;
  #node;
  #ring;
  #written = 0;
  #waiting = [];
  /** RMS level of the last chunk in dB below full scale. */
  level = -Infinity;
  /** Called with `level` on every chunk. */
  onLevel = null;

  static async open() {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser gives pages no microphone (getUserMedia is missing; is the page served over https or localhost?)');
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    }).catch((err) => {
      throw new Error(`the microphone could not be opened: ${err.message ?? err}`);
    });
    const context = new AudioContext();
    await context.audioWorklet.addModule(WORKLET);
    return new Mic(stream, context);
  }

  constructor(stream, context) {
    this.#stream = stream;
    this.#context = context;
    this.rate = context.sampleRate;
    this.#ring = new Float32Array(Math.round(this.rate * KEEP_S));
    const source = context.createMediaStreamSource(stream);
    this.#node = new AudioWorkletNode(context, 'tabtune-recorder');
    // A silent path to the output keeps the graph pulling samples through the worklet.
    const mute = context.createGain();
    mute.gain.value = 0;
    source.connect(this.#node).connect(mute).connect(context.destination);
    this.#node.port.onmessage = ({ data }) => this.#push(data);
  }

  #push(chunk) {
    const ring = this.#ring;
    let sum = 0;
    for (let i = 0; i < chunk.length; i++) {
      ring[(this.#written + i) % ring.length] = chunk[i];
      sum += chunk[i] * chunk[i];
    }
    this.#written += chunk.length;
    this.level = 10 * Math.log10(sum / chunk.length || 1e-12);
    this.onLevel?.(this.level);
    this.#waiting = this.#waiting.filter((w) => (this.#written >= w.until ? (w.resolve(), false) : true));
  }

  /** Seconds of audio the microphone has given so far. */
  get seconds() {
    return this.#written / this.rate;
  }

  /** The last `seconds` of samples (fewer when the microphone has not run that long). */
  last(seconds) {
    const n = Math.min(Math.round(seconds * this.rate), this.#written, this.#ring.length);
    const out = new Float32Array(n);
    const start = this.#written - n;
    for (let i = 0; i < n; i++) out[i] = this.#ring[(start + i) % this.#ring.length];
    return out;
  }

  /** Record the next `seconds` of samples: `{samples, rate}`. */
  async record(seconds) {
    if (seconds > KEEP_S) throw new Error(`a recording is at most ${KEEP_S} s`);
    const until = this.#written + Math.round(seconds * this.rate);
    await new Promise((resolve) => this.#waiting.push({ until, resolve }));
    return { samples: this.last(seconds), rate: this.rate };
  }

  close() {
    for (const track of this.#stream.getTracks()) track.stop();
    this.#context.close();
    for (const w of this.#waiting) w.resolve();
    this.#waiting = [];
  }
}
