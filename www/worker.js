// The worker owns the wasm core and the device; the page only sends typed messages:
//   page -> worker: {type:'init', device}, {type:'train', recipe, spec}, {type:'cancel'}
//   worker -> page: {type:'ready', device}, {type:'progress', event}, {type:'done', report},
//                   {type:'error', message}
import init, { Session } from './pkg/tabtune.js';

let session = null;
let controller = null;
const post = (message) => self.postMessage(message);
const message = (err) => String(err?.message ?? err);

self.onmessage = async ({ data }) => {
  try {
    switch (data.type) {
      case 'init':
        await init();
        session = await Session.create(data.device ?? 'auto');
        post({ type: 'ready', device: session.device });
        break;
      case 'train': {
        if (!session) throw new Error('the device is not ready yet');
        controller = new AbortController();
        const report = await session.trainHeadDemo(
          data.recipe,
          data.spec,
          (event) => post({ type: 'progress', event }),
          controller.signal,
        );
        post({ type: 'done', report });
        break;
      }
      case 'cancel':
        controller?.abort();
        break;
      default:
        throw new Error(`unknown message type ${data.type}`);
    }
  } catch (err) {
    post({ type: 'error', message: message(err) });
  }
};
