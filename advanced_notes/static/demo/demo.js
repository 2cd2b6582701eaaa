// The browser demo of the three steps: create an upload session, PUT the bytes straight
// to the bucket with the presigned URL, complete; then play the clip back, follow its
// processing (GET the clip until done or failed) and play the rendition it made.
// Plain JavaScript, no build step and nothing fetched from elsewhere: it works offline.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // For files the browser cannot type (or types as video): mirrors
  // advanced_notes.mime.EXTENSION_MIME_TYPES, the API's table for file names.
  const EXTENSION_TYPES = {
    m4a: "audio/mp4", mp4: "audio/mp4", aac: "audio/aac", mp3: "audio/mpeg", wav: "audio/wav",
    webm: "audio/webm", ogg: "audio/ogg", oga: "audio/ogg", opus: "audio/opus", flac: "audio/flac",
    "3gp": "audio/3gpp",
  };
  // Chromium types a .webm file as video/webm (the container holds both); the API only
  // accepts audio/* types, and the sniffing at complete checks the container anyway.
  const VIDEO_TO_AUDIO = {
    "video/webm": "audio/webm", "video/ogg": "audio/ogg", "video/mp4": "audio/mp4", "video/3gpp": "audio/3gpp",
  };
  // What MediaRecorder should write, best first: open codecs every browser can play back.
  const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
  /** Milliseconds of audio per chunk the recorder hands over while it records. */
  const RECORDING_TIMESLICE_MS = 1000;
  const STEPS = ["checksum", "create", "put", "complete", "playback", "processing"];
  /** Milliseconds between two reads of the clip while its processing runs. */
  const PROCESSING_POLL_MS = 1000;
  /** Milliseconds after which the page stops waiting for the worker (a job's time limit is 10 min). */
  const PROCESSING_WAIT_MS = 15 * 60 * 1000;
  const RESULT_FIELDS = ["clip-id", "clip-status", "clip-duration", "clip-processing", "clip-processed-duration",
    "clip-loudness", "clip-rendition"];

  /** An error answer of the API: {"error": {"code", "message", "details"}}. */
  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      Object.assign(this, { status, code, details });
    }

    describe() {
      const details = this.details ? ` Details: ${JSON.stringify(this.details)}` : "";
      return `API ${this.status} ${this.code}: ${this.message}${details}`;
    }
  }

  /** An error answer of the object store (S3's XML <Error><Code/><Message/></Error>). */
  class StoreError extends Error {
    constructor(status, code, message) {
      super(message);
      Object.assign(this, { status, code });
    }

    describe() {
      return this.status ? `Store ${this.status} ${this.code}: ${this.message}` : `Store: ${this.message}`;
    }
  }

  let selected = null; // {blob, name, type}: what Upload sends
  let recorder = null;
  /** Counts uploads: a clip's processing is followed only while it is the page's last upload. */
  let generation = 0;

  const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

  /** The token of the URL fragment (#token=...): fragments never reach a server or its logs. */
  function tokenFromFragment() {
    return new URLSearchParams(window.location.hash.slice(1)).get("token");
  }

  /** The MIME type to declare for a blob, or "" when it cannot be told. Parameters are kept:
   *  the API drops them and upload.headers says the exact Content-Type to PUT. */
  function declaredType(blob, name) {
    const type = (blob.type || "").trim();
    const base = type.split(";", 1)[0].trim().toLowerCase();
    if (base.startsWith("audio/")) return type;
    if (VIDEO_TO_AUDIO[base]) return VIDEO_TO_AUDIO[base];
    const ext = name.includes(".") ? name.split(".").pop().toLowerCase() : "";
    return EXTENSION_TYPES[ext] || "";
  }

  /** Base64 SHA-256 of a blob, or null where WebCrypto is missing (plain http off loopback). */
  async function sha256Base64(blob) {
    if (!window.crypto || !window.crypto.subtle) return null;
    const digest = new Uint8Array(await window.crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
    return btoa(String.fromCharCode(...digest));
  }

  /** Call the API (same origin as this page) and return its JSON; throws ApiError on 4xx/5xx. */
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${$("token").value.trim()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      // Relative to the page, so a path prefix in front of the app is kept.
      response = await fetch(new URL(path, document.baseURI), {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, "network_error", `The API could not be reached (${err.message}).`);
    }
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (payload && payload.error) || {};
      throw new ApiError(response.status, error.code || "http_error",
        error.message || `HTTP ${response.status} without the JSON error shape.`, error.details);
    }
    return payload;
  }

  /** PUT a blob to the presigned URL with exactly upload.headers; resolves to the ETag.
   *  XMLHttpRequest, not fetch: only it reports upload progress. */
  function putToStore(upload, blob, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(upload.method || "PUT", upload.url);
      for (const [name, value] of Object.entries(upload.headers || {})) {
        // The browser sets Content-Length from the body itself and refuses to be told.
        if (["content-length", "host"].includes(name.toLowerCase())) continue;
        xhr.setRequestHeader(name, value);
      }
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve(xhr.getResponseHeader("ETag"));
          return;
        }
        const xml = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
        const text = (tag) => (xml.querySelector(tag) || {}).textContent || "";
        reject(new StoreError(xhr.status, text("Code") || "HTTP error", text("Message") || xhr.statusText));
      };
      // Status 0 tells nothing by design: the usual cause is CORS, so say where to look.
      xhr.onerror = () => reject(new StoreError(0, "", "The browser could not send the file or was not allowed to "
        + `read the answer. Do the bucket's CORS rules allow PUT from ${window.location.origin}?`));
      xhr.onabort = () => reject(new StoreError(0, "", "The upload was aborted."));
      xhr.send(blob);
    });
  }

  /** Show a step's state ("active", "done", "failed", "skipped") and its status text. */
  function setStep(step, state, text) {
    const output = $(`step-${step}`);
    output.closest("li").dataset.state = state;
    output.textContent = text;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function formatMs(ms) {
    return ms === null || ms === undefined ? "not reported" : `${(ms / 1000).toFixed(2)} s`;
  }

  function formatLoudness(processing) {
    const { loudness_lufs: lufs, true_peak_dbtp: peak } = processing;
    if (lufs === null || lufs === undefined) return "not measured";
    const truePeak = peak === null || peak === undefined ? "" : `, true peak ${peak.toFixed(1)} dBTP`;
    return `${lufs.toFixed(1)} LUFS integrated${truePeak}`;
  }

  /** Play a presigned GET in <audio>; `label` names the rendition in the step's text. */
  function play(playback, label, onFailure) {
    const player = $("player");
    player.onloadedmetadata = () => {
      // A MediaRecorder WebM has no Duration element: the browser says Infinity until
      // the worker's seekable rendition (which has Cues and a Duration) replaces it.
      const length = Number.isFinite(player.duration) ? `${player.duration.toFixed(2)} s` : "length unknown";
      setStep("playback", "done", `ready to play (${length}, ${label}); URL expires ${playback.expires_at}`);
      $("clip-rendition").textContent = label;
    };
    player.onerror = () => {
      const code = player.error ? player.error.code : "?";
      setStep("playback", "failed", "failed");
      onFailure(code);
    };
    setStep("playback", "active", `loading the ${label}…`);
    player.src = playback.url;
  }

  /** The rendition to play once processing is done: the seekable WebM when there is one
   *  (the original is WebM), the universal AAC when this browser cannot play the original. */
  function chooseRendition(processing, originalPlays) {
    const available = processing.renditions || [];
    if (available.includes("seekable")) return "seekable";
    if (!originalPlays && available.includes("universal")) return "universal";
    return "original";
  }

  /** Read the clip until its processing is done or failed, show the result, play its rendition.
   *  `original` is {mimeType, failed()}: whether <audio> could play the original. */
  async function followProcessing(clipId, original, gen) {
    const path = `api/audio-clips/${encodeURIComponent(clipId)}`;
    const deadline = Date.now() + PROCESSING_WAIT_MS;
    let processing = null;
    setStep("processing", "active", "queued: waiting for a worker…");
    for (;;) {
      try {
        ({ clip: { processing } } = await api("GET", path));
      } catch (err) {
        // A read that fails (the API restarting, a network blip) is tried again.
        processing = null;
        setStep("processing", "active", `cannot read the clip (${err.describe ? err.describe() : err.message}); `
          + "trying again…");
      }
      if (gen !== generation) return;
      const status = processing ? processing.status : null;
      if (status === "done" || status === "failed") break;
      if (processing) {
        $("clip-processing").textContent = status || "not started";
        setStep("processing", "active", status === "running" ? "running: decoding, measuring, transcoding…"
          : "queued: waiting for a worker…");
      }
      if (Date.now() > deadline) {
        setStep("processing", "failed", "no result yet: is a worker running? (`advanced-notes dev` starts one)");
        return;
      }
      await sleep(PROCESSING_POLL_MS);
      if (gen !== generation) return;
    }
    $("clip-processing").textContent = processing.status;
    $("clip-processed-duration").textContent = formatMs(processing.duration_ms);
    $("clip-loudness").textContent = formatLoudness(processing);
    if (processing.status === "failed") {
      const reason = processing.reason || {};
      setStep("processing", "failed", `failed: ${reason.code || "unknown"}: ${reason.message || "no reason given"}`
        + " (the original is kept and still plays)");
      return;
    }
    const originalPlays = !original.failed() && $("player").canPlayType(original.mimeType) !== "";
    const rendition = chooseRendition(processing, originalPlays);
    setStep("processing", "done", `done: ${formatMs(processing.duration_ms)} decoded, ${formatLoudness(processing)}`);
    if (rendition === "original") return;
    const playback = await api("GET", `${path}/playback?rendition=${rendition}`);
    if (gen !== generation) return;
    showError("");
    play(playback, `${rendition} rendition`, (code) => {
      showError(`This browser cannot play the ${rendition} rendition either (MediaError ${code}).`);
    });
  }

  /** Make a file or a recording the thing Upload sends. */
  function select(blob, name) {
    const type = declaredType(blob, name);
    selected = type ? { blob, name, type } : null;
    $("selection").textContent = type
      ? `Selected ${name}: ${blob.size} bytes, ${type}.`
      : `Cannot tell the audio type of ${name}: pick a file with a known extension.`;
    $("upload").disabled = !selected;
  }

  async function startRecording() {
    showError("");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      showError(`Microphone: ${err.name}: ${err.message}`);
      return;
    }
    const mimeType = RECORDING_TYPES.find((t) => MediaRecorder.isTypeSupported(t));
    try {
      recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    } catch (err) {
      stream.getTracks().forEach((track) => track.stop()); // release the microphone
      showError(`Recorder: ${err.name}: ${err.message}`);
      return;
    }
    const chunks = [];
    recorder.ondataavailable = (event) => {
      if (event.data.size) chunks.push(event.data);
    };
    recorder.onstop = () => {
      stream.getTracks().forEach((track) => track.stop());
      const type = recorder.mimeType || mimeType || "audio/webm";
      const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
      select(new Blob(chunks, { type }), `recording.${ext}`);
      $("record").disabled = false;
      $("stop").disabled = true;
    };
    // With a timeslice the recorder hands over data as it goes (how long notes are
    // recorded, or uploaded while recording): it writes WebM with a Segment of unknown
    // size and no Duration, which the API measures by walking the file's EBML.
    recorder.start(RECORDING_TIMESLICE_MS);
    $("record").disabled = true;
    $("stop").disabled = false;
    $("upload").disabled = true;
    $("selection").textContent = "Recording… press Stop to finish.";
  }

  /** After a failed step, the Result panel shows the clip as the server now has it
   *  (a rejected upload is `rejected` there, not the `pending` the page saw last). */
  async function showServerState(clipId) {
    try {
      const { clip } = await api("GET", `api/audio-clips/${encodeURIComponent(clipId)}`);
      $("clip-status").textContent = clip.status;
      $("clip-duration").textContent = formatMs(clip.measured_duration_ms);
    } catch (err) {
      $("clip-status").textContent = "unknown (the API did not answer)";
    }
  }

  /** The three steps and playback, each step's status shown as it goes. */
  async function upload(event) {
    event.preventDefault();
    if (!selected) return;
    if (!$("token").value.trim()) {
      showError("A bearer token is needed: paste one, or open the link `advanced-notes dev` printed.");
      $("token").focus();
      return;
    }
    const { blob, type } = selected;
    const form = $("upload-form");
    let step = STEPS[0];
    let clipId = null;
    const gen = ++generation; // stops following the last clip's processing
    showError("");
    STEPS.forEach((s) => setStep(s, "", "waiting"));
    $("put-progress").value = 0;
    RESULT_FIELDS.forEach((id) => { $(id).textContent = "–"; });
    // Drop the last clip: old handlers first, so unloading it cannot report a stale failure.
    const player = $("player");
    player.onloadedmetadata = player.onerror = null;
    player.removeAttribute("src");
    player.load();
    $("upload").disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      setStep(step, "active", "computing…");
      const checksum = await sha256Base64(blob);
      setStep(step, checksum ? "done" : "skipped", checksum ? checksum
        : "skipped: WebCrypto needs https or localhost");

      step = "create";
      setStep(step, "active", "creating the upload session…");
      const body = { mime_type: type, bytes: blob.size };
      const noteId = $("note-id").value.trim();
      if (noteId) body.note_id = noteId;
      if (checksum) body.checksum_sha256 = checksum;
      const created = await api("POST", "api/audio-clips", body);
      clipId = created.clip.id;
      $("clip-id").textContent = clipId;
      $("clip-status").textContent = created.clip.status;
      setStep(step, "done", `clip ${clipId} pending`);

      step = "put";
      setStep(step, "active", "0%");
      let shown = 0;
      const etag = await putToStore(created.upload, blob, (fraction) => {
        const percent = Math.floor(fraction * 100);
        $("put-progress").value = percent;
        // The text is a live region: every 10 % is news, every 1 % would be noise.
        if (percent >= shown + 10) {
          shown = percent - (percent % 10);
          $("step-put").textContent = `${shown}%`;
        }
      });
      $("put-progress").value = 100;
      setStep(step, "done", `stored${etag ? `, ETag ${etag}` : ""}`);

      step = "complete";
      setStep(step, "active", "the API is checking the object…");
      const { clip } = await api("POST", `api/audio-clips/${encodeURIComponent(clipId)}/complete`);
      $("clip-status").textContent = clip.status;
      $("clip-duration").textContent = formatMs(clip.measured_duration_ms);
      setStep(step, "done", clip.status);

      step = "playback";
      setStep(step, "active", "getting a playback URL…");
      const playback = await api("GET", `api/audio-clips/${encodeURIComponent(clipId)}/playback`);
      let originalFailed = false;
      play(playback, "original", (code) => {
        originalFailed = true;
        showError(`This browser cannot play the clip (MediaError ${code}): it may lack the codec. `
          + "Once processed, its universal rendition (AAC in MP4) plays instead.");
      });

      // Not awaited: the form is free again while the worker processes the clip.
      const original = { mimeType: clip.mime_type, failed: () => originalFailed };
      followProcessing(clipId, original, gen).catch((err) => {
        if (gen !== generation) return;
        setStep("processing", "failed", "failed");
        showError(err.describe ? err.describe() : `Unexpected error: ${err.message}`);
      });
    } catch (err) {
      setStep(step, "failed", "failed");
      showError(err.describe ? err.describe() : `Unexpected error: ${err.message}`);
      if (clipId) await showServerState(clipId);
    } finally {
      form.removeAttribute("aria-busy");
      $("upload").disabled = !selected;
    }
  }

  function init() {
    const fillToken = () => {
      const token = tokenFromFragment();
      if (token) $("token").value = token;
    };
    fillToken();
    window.addEventListener("hashchange", fillToken);
    $("file").addEventListener("change", (event) => {
      const [file] = event.target.files;
      if (file) select(file, file.name);
    });
    if (window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
      $("recorder").hidden = false;
      $("record").addEventListener("click", startRecording);
      $("stop").addEventListener("click", () => recorder && recorder.state !== "inactive" && recorder.stop());
    }
    $("upload-form").addEventListener("submit", upload);
  }

  init();
})();
