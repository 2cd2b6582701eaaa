// The API's own calls: the bearer token, JSON in and out, the error shape as one sentence.
const $ = (id) => document.getElementById(id);

/** The token typed in, or given in the URL fragment (#token=...), which never reaches a server. */
export function token() {
  return $("token").value.trim();
}

export function authHeaders() {
  return { Authorization: `Bearer ${token()}` };
}

/** An API failure: `status`, `code` and the server's message, shown as "422 upload_rejected: ...". */
export class ApiError extends Error {
  constructor(status, error) {
    super(`${status} ${error.code}: ${error.message}`);
    this.status = status;
    this.code = error.code;
    this.details = error.details || null;
  }
}

/** fetch() of the API: resolves to the JSON answer (null for 204), rejects with ApiError. */
export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { ...authHeaders(), ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new ApiError(0, { code: "network_error", message: `the API did not answer (${error.message})` });
  }
  const payload = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, (payload && payload.error) || { code: "http_error", message: response.statusText });
  }
  return payload;
}

/** The audio MIME type to declare: the browser's, without codec parameters, or one from the name. */
export function mimeOf(file) {
  const declared = (file.type || "").split(";")[0].trim().toLowerCase();
  if (declared) return declared;
  const ext = (file.name || "").split(".").pop().toLowerCase();
  const byExt = { wav: "audio/wav", mp3: "audio/mpeg", m4a: "audio/mp4", ogg: "audio/ogg", opus: "audio/ogg",
    webm: "audio/webm", flac: "audio/flac", aac: "audio/aac", "3gp": "audio/3gpp" };
  return byExt[ext] || "application/octet-stream";
}
