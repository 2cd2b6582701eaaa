// Resume after a reload: a multipart upload's {clipId, uploadId, key, partSize} in localStorage
// under the file's name, size and date. Adding the same file again hands Uppy its own resume
// state (file.s3Multipart): Uppy lists the stored parts and sends only the others.
const STORE = "advanced-notes-uploads";

function fileKey(file) {
  const data = file.data || {};
  return `${file.name}|${file.size}|${data.lastModified || ""}`;
}

function all() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "{}");
  } catch {
    return {};
  }
}

/** The saved multipart session of a file like this one, or undefined. */
export function recall(file) {
  return all()[fileKey(file)];
}

/** Save (or, with null, forget) the multipart session of `file`. */
export function remember(file, session) {
  const saved = all();
  if (session) saved[fileKey(file)] = session;
  else delete saved[fileKey(file)];
  localStorage.setItem(STORE, JSON.stringify(saved));
}
