// The browser page (/app): Uppy's Dashboard (drag and drop, per-file progress, pause/resume,
// retry), @uppy/audio for the microphone, @uppy/aws-s3 for the upload, and a clip panel with a
// wavesurfer.js player (clips.js). Everything is unchanged Uppy, pointed at the API through its
// documented hooks (docs/multipart.md):
// - a preprocessor creates each clip (POST /api/audio-clips, no "multipart" field: the server's
//   MULTIPART_THRESHOLD_BYTES decides) and keys it by its storage key, which generateObjectKey
//   hands to Uppy, so every signRequest call finds its clip by `request.key`;
// - a single PUT goes to the clip's presigned URL with exactly its signed headers, and the page
//   completes it (POST .../complete) when Uppy reports success;
// - a multipart upload's CreateMultipartUpload, ListParts and CompleteMultipartUpload go to the
//   API's S3-shaped routes (.../multipart/s3, whose complete verifies), every part PUT straight
//   to the bucket with a URL from POST .../multipart/parts, abort to DELETE .../multipart.
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";
import "@uppy/audio/css/style.min.css";
import "./app.css";
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import Audio from "@uppy/audio";
import AwsS3 from "@uppy/aws-s3";
import { ApiError, api, authHeaders, mimeOf } from "./api.js";
import { rowOf, showClip, showError, showState } from "./clips.js";
import { recall, remember } from "./resume.js";

const sessions = new Map(); // storage key -> {clipId, key, name, uploadId?, partSize?, upload?}
const keyOfFile = new Map(); // Uppy file id -> storage key
const partSizes = new Map(); // file size -> the server's part size (getChunkSize sees only the size)
const SIGNED_HERE = new Set(["content-length", "host"]); // the browser sets these itself

const sessionOf = (file) => sessions.get(keyOfFile.get(file.id));

function adopt(file, session) {
  sessions.set(session.key, session);
  keyOfFile.set(file.id, session.key);
  if (session.partSize) partSizes.set(file.size, session.partSize);
  return rowOf(session.clipId, file.name);
}

async function resumed(file) {
  const saved = recall(file);
  if (!saved) return false;
  try {
    const { clip } = await api("GET", `/api/audio-clips/${saved.clipId}`);
    if (clip.status !== "pending") throw new Error(clip.status);
  } catch {
    remember(file, null); // gone, finished or expired: start afresh
    return false;
  }
  const row = adopt(file, { ...saved, name: file.name });
  showState(row, "resuming");
  uppy.setFileState(file.id, { s3Multipart: { uploadId: saved.uploadId, key: saved.key } });
  return true;
}

async function create(file) {
  const created = await api("POST", "/api/audio-clips", { mime_type: mimeOf(file), bytes: file.size });
  const session = { clipId: created.clip.id, key: created.clip.storage_key, name: file.name, upload: created.upload };
  if (created.multipart) {
    session.uploadId = created.multipart.upload_id;
    session.partSize = created.multipart.part_size;
    remember(file, { clipId: session.clipId, key: session.key, uploadId: session.uploadId, partSize: session.partSize });
  }
  const row = adopt(file, session);
  showState(row, created.multipart ? `uploading in ${created.multipart.part_count} parts` : "uploading");
}

async function prepare(fileIDs) {
  for (const id of fileIDs) {
    const file = uppy.getFile(id);
    const known = sessionOf(file);
    if (known && !known.rejected) continue; // a retry of the same clip
    if (!known && (await resumed(file))) continue;
    try {
      await create(file);
    } catch (error) {
      // The API's refusal (a type it does not take, a quota): on the file, in Uppy's words.
      uppy.setFileState(id, { error: error.message });
      uppy.info(`${file.name}: ${error.message}`, "error", 10000);
    }
  }
}

async function signRequest(request) {
  const session = sessions.get(request.key);
  if (!session) throw new Error(`no clip for ${request.key}`);
  const base = `/api/audio-clips/${session.clipId}`;
  if (request.method === "PUT" && request.partNumber) {
    const { parts } = await api("POST", `${base}/multipart/parts`, { part_numbers: [request.partNumber] });
    return { url: parts[0].url }; // it signs Content-Length, which the browser sets from the part
  }
  if (request.method === "PUT") {
    let upload = session.upload;
    if (!upload || Date.parse(upload.expires_at) < Date.now() + 60_000) {
      ({ upload } = await api("POST", `${base}/upload-url`));
      session.upload = upload;
    }
    const headers = Object.fromEntries(Object.entries(upload.headers).filter(([name]) => !SIGNED_HERE.has(name.toLowerCase())));
    return { url: upload.url, headers };
  }
  if (request.method === "POST" && !request.uploadId) return { url: `${base}/multipart/s3`, key: session.key, headers: authHeaders() };
  if (request.method === "GET") return { url: `${base}/multipart/s3`, headers: authHeaders() };
  if (request.method === "POST") return { url: `${base}/multipart/s3/complete`, headers: authHeaders() };
  if (request.method === "DELETE") return { url: `${base}/multipart`, headers: authHeaders() };
  throw new Error(`unexpected request ${request.method}`);
}

const uppy = new Uppy({
  autoProceed: false,
  restrictions: { allowedFileTypes: ["audio/*", ".m4a", ".wav", ".mp3", ".ogg", ".opus", ".webm", ".flac"] },
});
uppy.use(Dashboard, {
  inline: true,
  target: "#dashboard",
  height: 380,
  width: "100%",
  proudlyDisplayPoweredByUppy: false,
  showProgressDetails: true,
  note: "Audio files or a recording; large files go up in parts and resume after a reload.",
});
uppy.use(Audio, { target: Dashboard });
uppy.use(AwsS3, {
  limit: 2,
  signRequest,
  generateObjectKey: (file) => keyOfFile.get(file.id),
  shouldUseMultipart: (file) => Boolean(sessionOf(file) && sessionOf(file).uploadId),
  // The server chose the part size; Uppy must cut the file at the same offsets.
  getChunkSize: ({ size }) => partSizes.get(size),
});
uppy.addPreProcessor(prepare);

uppy.on("upload-progress", (file) => {
  const session = sessionOf(file);
  if (!session) return;
  const row = rowOf(session.clipId, file.name);
  if (!row.dataset.status.startsWith("uploading")) showState(row, "uploading"); // resumed or retried
});

uppy.on("upload-success", async (file) => {
  const session = sessionOf(file);
  const row = rowOf(session.clipId, file.name);
  showState(row, "verifying");
  showError(row, null);
  try {
    // A multipart upload was verified by its S3-shaped complete; a single PUT is completed here.
    const { clip } = session.uploadId
      ? await api("GET", `/api/audio-clips/${session.clipId}`)
      : await api("POST", `/api/audio-clips/${session.clipId}/complete`);
    if (session.uploadId) remember(file, null);
    showClip(row, clip);
  } catch (error) {
    reject(file, session, row, error);
  }
});

uppy.on("upload-error", (file, error) => {
  const session = sessionOf(file);
  if (!session) return;
  reject(file, session, rowOf(session.clipId, file.name), explain(error));
});

/** Uppy's error in the service's or the store's own words (the answer's body), or the likely cause. */
function explain(error) {
  if (error && error.status && error.body) {
    try {
      const answer = JSON.parse(error.body); // the API's S3-shaped routes answer errors in its JSON shape
      if (answer && answer.error) return new ApiError(error.status, answer.error);
    } catch {
      // S3's XML error
    }
    const code = /<Code>([^<]*)<\/Code>/.exec(error.body);
    const message = /<Message>([^<]*)<\/Message>/.exec(error.body);
    if (code) return new Error(`Store ${error.status} ${code[1]}${message ? `: ${message[1]}` : ""}`);
  }
  if (error && (error.code === "NETWORK" || error.isNetworkError)) {
    return new Error(
      `The browser could not reach the bucket: the network is down, or the bucket's CORS rules do not allow ` +
        `this page's origin ${window.location.origin} (advanced-notes storage cors --apply sets them)`,
    );
  }
  return error;
}

function reject(file, session, row, error) {
  if (error.code === "upload_rejected") {
    session.rejected = true; // a retry creates a new clip
    if (session.uploadId) remember(file, null);
    showState(row, "rejected");
    const reason = error.details && error.details.reason ? ` (${error.details.reason})` : "";
    showError(row, `Rejected by the server${reason}: ${error.message}`);
  } else {
    showState(row, "failed");
    showError(row, `${error.message}; retry from the list above`);
  }
  uppy.info(`${file.name}: ${error.message}`, "error", 10000);
}

window.addEventListener("DOMContentLoaded", () => {
  const fromFragment = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (fromFragment) document.getElementById("token").value = fromFragment;
  document.getElementById("versions").textContent =
    `Uppy ${Uppy.VERSION} (Dashboard ${Dashboard.VERSION}, Audio ${Audio.VERSION}, AWS S3 ${AwsS3.VERSION})`;
});
