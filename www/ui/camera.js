// The webcam: one stream shared by the capture buttons of step 1 and step 3, a frame grabbed
// into a PNG Blob through a canvas. The stream stops when no video element shows it.

let stream = null;
const users = new Set();

/** Start the camera (asking for permission once) and show it in `video`. */
export async function startCamera(video) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error('this browser gives the page no camera (getUserMedia is missing; it needs https or localhost)');
  }
  if (!stream) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      const why = err?.name === 'NotAllowedError' ? 'permission was refused' : err?.message || err?.name || String(err);
      throw new Error(`the camera could not be started: ${why}`);
    }
  }
  users.add(video);
  if (video.srcObject !== stream) video.srcObject = stream;
  video.hidden = false;
  await video.play().catch(() => {});
  if (!video.videoWidth) {
    await new Promise((resolve) => {
      const done = () => resolve();
      video.addEventListener('loadeddata', done, { once: true });
      setTimeout(done, 3000);
    });
  }
}

export const cameraOn = (video) => users.has(video);

/** Stop showing the camera in `video`; the stream stops when nothing shows it. */
export function stopCamera(video) {
  users.delete(video);
  video.pause();
  video.srcObject = null;
  video.hidden = true;
  if (!users.size && stream) {
    for (const track of stream.getTracks()) track.stop();
    stream = null;
  }
}

/** The current frame of `video` as a PNG File named `name`. */
export async function grabFrame(video, name = 'webcam.png') {
  const { videoWidth: w, videoHeight: h } = video;
  if (!w || !h) throw new Error('the camera has no picture yet; try again in a moment');
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  canvas.getContext('2d').drawImage(video, 0, 0, w, h);
  const blob = await new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the frame could not be encoded'))), 'image/png'),
  );
  return new File([blob], name, { type: 'image/png' });
}
