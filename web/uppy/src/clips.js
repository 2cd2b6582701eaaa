// The Clips panel: one row per clip this page uploaded, its status through verification and
// processing (the API's clip object), and once processed a wavesurfer.js player drawn from the
// service's peaks (GET .../peaks: audiowaveform JSON v2), so drawing downloads no audio.
import WaveSurfer from "wavesurfer.js";
import { api } from "./api.js";

const POLL_MS = 1000;
const rows = new Map(); // clip id -> row element

function part(row, name) {
  return row.querySelector(`[data-part=${name}]`);
}

function set(row, name, text) {
  part(row, name).textContent = text;
}

/** The row of clip `clipId` (made on first use), for a file called `name`. */
export function rowOf(clipId, name) {
  let row = rows.get(clipId);
  if (row) return row;
  row = document.getElementById("clip-template").content.firstElementChild.cloneNode(true);
  row.dataset.clipId = clipId;
  row.dataset.name = name;
  set(row, "name", name);
  set(row, "id", clipId);
  document.getElementById("clips").prepend(row);
  document.getElementById("clips-empty").hidden = true;
  rows.set(clipId, row);
  return row;
}

/** Show `text` as the row's upload state ("uploading", "verifying", "ready", "rejected", ...). */
export function showState(row, text) {
  set(row, "status", text);
  row.dataset.status = text;
}

/** Show a failure in the row (role=alert), or hide it with null. */
export function showError(row, message) {
  const box = part(row, "error");
  box.hidden = message === null;
  box.textContent = message || "";
}

/** Show the clip as the API answered it; a ready clip is then followed through processing. */
export function showClip(row, clip) {
  showState(row, clip.status);
  if (clip.status === "ready") follow(row, clip.id);
}

async function follow(row, clipId) {
  if (row.dataset.following) return;
  row.dataset.following = "yes";
  for (;;) {
    let clip;
    try {
      ({ clip } = await api("GET", `/api/audio-clips/${clipId}`));
    } catch (error) {
      showError(row, `could not read the clip: ${error.message}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      continue;
    }
    const processing = clip.processing;
    set(row, "processing", processing ? processing.status : "not queued yet");
    row.dataset.processing = processing ? processing.status : "";
    if (processing && processing.status === "done") return play(row, clip);
    if (processing && processing.status === "failed") {
      const reason = processing.reason ? processing.reason.message : "unknown";
      set(row, "processing", `failed: ${reason} (the original plays)`);
      return play(row, clip);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** audiowaveform JSON v2 -> wavesurfer's channels: [maxima, minima] in -1..1, channels merged. */
export function peaksToChannels(json) {
  const scale = 2 ** ((json.bits || 16) - 1);
  const channels = json.channels || 1;
  const stride = 2 * channels;
  const count = Math.floor(json.data.length / stride);
  const top = new Float32Array(count);
  const bottom = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let low = 0;
    let high = 0;
    for (let c = 0; c < channels; c++) {
      low = Math.min(low, json.data[i * stride + 2 * c]);
      high = Math.max(high, json.data[i * stride + 2 * c + 1]);
    }
    top[i] = high / scale;
    bottom[i] = low / scale;
  }
  return [top, bottom];
}

async function play(row, clip) {
  const processing = clip.processing;
  const done = processing.status === "done";
  const rendition = (done && ["seekable", "universal"].find((name) => processing.renditions.includes(name))) || "original";
  try {
    const playback = await api("GET", `/api/audio-clips/${clip.id}/playback?rendition=${rendition}`);
    const audio = part(row, "player");
    audio.hidden = false;
    set(row, "rendition", `${rendition} rendition`);
    if (!done) {
      audio.src = playback.url; // no peaks: the plain player
      return;
    }
    const { url } = await api("GET", `/api/audio-clips/${clip.id}/peaks`);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`peaks: the store answered ${response.status}`);
    const peaks = peaksToChannels(await response.json());
    const duration = processing.duration_ms / 1000;
    set(row, "duration", `${duration.toFixed(2)} s`);
    if (processing.loudness_lufs !== null) set(row, "loudness", `${processing.loudness_lufs.toFixed(1)} LUFS`);
    const waveform = WaveSurfer.create({
      container: part(row, "waveform"),
      media: audio,
      url: playback.url,
      peaks,
      duration,
      height: 64,
      normalize: true,
      waveColor: "#8aa4c8",
      progressColor: "#1f4f8f",
      cursorColor: "#c0392b",
      barWidth: 2,
      barGap: 1,
    });
    waveform.on("ready", () => {
      row.dataset.waveform = "drawn";
    });
    waveform.on("error", (error) => showError(row, `player: ${error.message || error}`));
  } catch (error) {
    showError(row, `cannot play: ${error.message}`);
  }
}
