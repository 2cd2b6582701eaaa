// The /uppy page: Uppy 6 (@uppy/core + @uppy/aws-s3, unchanged) uploading a clip in parts.
//
// Uppy's documented `signRequest` hook is pointed at our API (docs/multipart.md):
// - the clip and its multipart upload are created by our API first (POST /api/audio-clips,
//   "multipart": true); Uppy's CreateMultipartUpload, ListParts and CompleteMultipartUpload
//   go to the API's S3-shaped routes (.../multipart/s3), which answer with the server's
//   upload id, the stored parts, and the verified clip;
// - every part PUT goes straight to the bucket with a URL from POST .../multipart/parts,
//   which binds the part's Content-Length;
// - abort is DELETE .../multipart.
// Resume after a reload: the clip id, upload id and key are kept in localStorage under the
// file's name, size and date; choosing the same file again sets Uppy's own resume state
// (file.s3Multipart), and Uppy lists the stored parts and sends only the others.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

const $ = (id) => document.getElementById(id);
const STORE = "advanced-notes-uppy-uploads";

function token() {
  return $("token").value.trim();
}

function authHeaders() {
  return { Authorization: `Bearer ${token()}` };
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { ...authHeaders(), ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const payload = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const error = payload && payload.error ? payload.error : { code: "http_error", message: response.statusText };
    throw new Error(`${response.status} ${error.code}: ${error.message}`);
  }
  return payload;
}

function fileKey(file) {
  return `${file.name}|${file.size}|${file.lastModified}`;
}

function saved() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "{}");
  } catch {
    return {};
  }
}

function remember(file, upload) {
  const all = saved();
  if (upload) all[fileKey(file)] = upload;
  else delete all[fileKey(file)];
  localStorage.setItem(STORE, JSON.stringify(all));
}

function show(id, text) {
  $(id).textContent = text;
}

// The upload in progress: one file at a time.
let current = null; // {clipId, uploadId, key, partSize}

const uppy = new Uppy({ autoProceed: false, allowMultipleUploadBatches: true });
uppy.use(AwsS3, {
  shouldUseMultipart: true,
  limit: 1,
  // The server chose the part size; Uppy must cut the file at the same offsets.
  getChunkSize: () => current.partSize,
  signRequest: async (request) => {
    const base = `/api/audio-clips/${current.clipId}/multipart`;
    if (request.method === "PUT" && request.partNumber) {
      const { parts } = await api("POST", `${base}/parts`, { part_numbers: [request.partNumber] });
      // No headers: the browser sets Content-Length from the part itself (and may not be told to).
      return { url: parts[0].url };
    }
    if (request.method === "POST" && !request.uploadId) {
      return { url: `${base}/s3`, key: current.key, headers: authHeaders() };
    }
    if (request.method === "GET") return { url: `${base}/s3`, headers: authHeaders() };
    if (request.method === "POST") return { url: `${base}/s3/complete`, headers: authHeaders() };
    if (request.method === "DELETE") return { url: base, headers: authHeaders() };
    throw new Error(`unexpected request ${request.method}`);
  },
});

uppy.on("upload-progress", (file, progress) => {
  const percent = progress.bytesTotal ? Math.floor((100 * progress.bytesUploaded) / progress.bytesTotal) : 0;
  $("progress").value = percent;
  show("status", `uploading: ${percent} %`);
});

uppy.on("s3-multipart:part-uploaded", (file, part) => {
  const parts = $("parts");
  parts.textContent = `${parts.textContent ? `${parts.textContent} ` : ""}${part.PartNumber}`;
});

uppy.on("upload-success", async () => {
  const file = $("file").files[0];
  remember(file, null);
  show("status", "verifying");
  const { clip } = await api("GET", `/api/audio-clips/${current.clipId}`);
  show("clip-status", clip.status);
  const playback = await api("GET", `/api/audio-clips/${current.clipId}/playback`);
  $("player").src = playback.url;
  show("status", "ready");
});

uppy.on("upload-error", (file, error) => {
  show("status", "failed");
  $("error").hidden = false;
  show("error", String(error && error.message ? error.message : error));
});

async function start() {
  $("error").hidden = true;
  const file = $("file").files[0];
  if (!file) return;
  const stored = saved()[fileKey(file)];
  if (stored) {
    current = stored;
    show("mode", `resuming clip ${stored.clipId}`);
  } else {
    const created = await api("POST", "/api/audio-clips", {
      mime_type: file.type || "audio/wav",
      bytes: file.size,
      multipart: true,
    });
    const session = created.multipart;
    current = {
      clipId: created.clip.id,
      uploadId: session.upload_id,
      key: session.storage_key,
      partSize: session.part_size,
    };
    remember(file, current);
    show("mode", `new clip ${current.clipId}, ${session.part_count} parts`);
  }
  show("clip-id", current.clipId);
  uppy.clear();
  const id = uppy.addFile({ name: file.name, type: file.type || "audio/wav", data: file, source: "file input" });
  if (stored) {
    // Uppy's own resume state (what Golden Retriever would restore): it lists the parts first.
    uppy.setFileState(id, { s3Multipart: { uploadId: stored.uploadId, key: stored.key } });
  }
  $("pause").disabled = false;
  uppy.upload();
}

function pauseOrResume() {
  const [file] = uppy.getFiles();
  if (!file) return;
  const paused = uppy.pauseResume(file.id);
  $("pause").textContent = paused ? "Resume" : "Pause";
  show("status", paused ? "paused" : "uploading");
}

window.addEventListener("DOMContentLoaded", () => {
  const fromFragment = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (fromFragment) $("token").value = fromFragment;
  $("upload").addEventListener("click", () => start().catch((error) => {
    $("error").hidden = false;
    show("error", error.message);
  }));
  $("pause").addEventListener("click", pauseOrResume);
  show("uppy-version", `Uppy ${Uppy.VERSION}, @uppy/aws-s3 ${AwsS3.VERSION}`);
});
