// The microphone's samples, mono, in chunks of 2,048 frames, from the audio thread to the page
// (www/ui/mic.js). It only copies: nothing is sent anywhere else.
class Recorder extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunk = new Float32Array(2048);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels?.length) {
      const frames = channels[0].length;
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (const channel of channels) sum += channel[i];
        this.chunk[this.filled++] = sum / channels.length;
        if (this.filled === this.chunk.length) {
          this.port.postMessage(this.chunk, [this.chunk.buffer]);
          this.chunk = new Float32Array(2048);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor('tabtune-recorder', Recorder);
