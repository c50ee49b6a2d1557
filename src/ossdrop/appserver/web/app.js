// ossdrop upload page: sign in, hash each file in the browser (hash-wasm MD5), ask the app server for a
// policy, POST the file straight to the store, show the store-relayed callback JSON, and keep a gallery.
//
// Sign-in: in dev mode the "User ID" form calls POST /api/dev/login. Otherwise the host app hands the page a
// token in the URL fragment: open /#token=<JWT>. The fragment never reaches a server; the page keeps the token in
// sessionStorage and removes it from the address bar.

const CHUNK_BYTES = 4 * 1024 * 1024;
const PARALLEL_UPLOADS = 2;
const HASH_PROGRESS_MIN_BYTES = 8 * 1024 * 1024;
const GALLERY_PAGE = 24;
const TOKEN_KEY = "ossdrop.token";
const USER_KEY = "ossdrop.user";

const $ = (selector, root = document) => root.querySelector(selector);

const config = {
  devMode: document.body.dataset.devMode === "true",
  maxBytes: Number(document.body.dataset.maxUploadBytes) || 0,
};

const ui = {
  loginForm: $("#login-form"),
  userId: $("#user-id"),
  signedIn: $("#signed-in"),
  who: $("#who"),
  signOut: $("#sign-out"),
  authMessage: $("#auth-message"),
  app: $("#app"),
  dropzone: $("#dropzone"),
  fileInput: $("#file-input"),
  limit: $("#limit"),
  uploads: $("#uploads"),
  uploadsEmpty: $("#uploads-empty"),
  clearDone: $("#clear-done"),
  gallery: $("#gallery"),
  galleryCount: $("#gallery-count"),
  galleryStatus: $("#gallery-status"),
  loadMore: $("#load-more"),
  refresh: $("#refresh"),
};

// ---------------------------------------------------------------------------------------------- formatting

const UNITS = ["bytes", "KB", "MB", "GB", "TB"];

function formatBytes(n) {
  if (n == null) return "unknown size";
  if (n < 1024) return n === 1 ? "1 byte" : `${n} bytes`;
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function formatDate(epochSeconds) {
  return dateFormat.format(new Date(epochSeconds * 1000));
}

// ---------------------------------------------------------------------------------------------- auth

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const given = params.get("token");
  if (!given) return;
  sessionStorage.setItem(TOKEN_KEY, given);
  sessionStorage.removeItem(USER_KEY);
  history.replaceState(null, "", location.pathname + location.search);
}

function showSignedIn() {
  const user = sessionStorage.getItem(USER_KEY);
  ui.loginForm.hidden = true;
  ui.signedIn.hidden = false;
  ui.who.textContent = user ? `Signed in as user ${user}` : "Signed in";
  ui.signOut.hidden = !config.devMode;
  ui.authMessage.textContent = "";
  ui.app.hidden = false;
  loadGallery();
}

function showSignedOut(message = "") {
  ui.signedIn.hidden = true;
  ui.app.hidden = true;
  ui.loginForm.hidden = !config.devMode;
  const help = config.devMode
    ? "Sign in with any user ID to try uploading (dev mode)."
    : "Open this page from your app: it passes your sign-in token to the page.";
  ui.authMessage.textContent = message ? `${message} ${help}` : help;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  ui.gallery.replaceChildren();
  showSignedOut(message);
}

async function devLogin(event) {
  event.preventDefault();
  const userId = Number(ui.userId.value);
  if (!Number.isInteger(userId) || userId < 1) {
    ui.authMessage.textContent = "The user ID must be a whole number, 1 or more.";
    ui.userId.focus();
    return;
  }
  try {
    const body = await api("POST", "/api/dev/login", { user_id: userId }, { auth: false });
    sessionStorage.setItem(TOKEN_KEY, body.token);
    sessionStorage.setItem(USER_KEY, String(userId));
    showSignedIn();
    ui.dropzone.focus();
  } catch (error) {
    ui.authMessage.textContent = `Could not sign in: ${describe(error)}`;
  }
}

// ---------------------------------------------------------------------------------------------- app server API

async function api(method, path, body, { auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (response.ok) return data;
  const error = new ApiError(response.status, data.error || "http_error", data.message || response.statusText);
  if (response.status === 401 && auth) signOut("Your sign-in has expired.");
  throw error;
}

function describe(error) {
  if (!(error instanceof ApiError)) return error?.message || String(error);
  switch (error.code) {
    case "too_large":
      return `This file is too large. The limit is ${formatBytes(config.maxBytes)} per file.`;
    case "unauthorized":
      return "Your sign-in has expired. Sign in again.";
    case "database_unavailable":
      return "The server is busy right now. Try again in a moment.";
    case "network":
      return error.message;
    default:
      return error.message ? `${capitalize(error.message)}.`.replace(/\.\.$/, ".") : "Something went wrong.";
  }
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---------------------------------------------------------------------------------------------- MD5 in the browser

function abortError() {
  return new DOMException("Cancelled", "AbortError");
}

async function newMD5() {
  if (!globalThis.hashwasm) throw new Error("The page could not load its MD5 code. Reload the page.");
  const hasher = await globalThis.hashwasm.createMD5();
  hasher.init();
  return hasher;
}

async function md5OfFile(file, signal, onProgress) {
  const hasher = await newMD5();
  for (let offset = 0; offset < file.size; offset += CHUNK_BYTES) {
    if (signal.aborted) throw abortError();
    const chunk = await file.slice(offset, offset + CHUNK_BYTES).arrayBuffer();
    hasher.update(new Uint8Array(chunk));
    onProgress(Math.min(offset + CHUNK_BYTES, file.size) / file.size);
  }
  return hasher.digest("hex");
}

// ---------------------------------------------------------------------------------------------- store POST

function postToStore(ticket, file, signal, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(ticket.fields)) form.append(name, value);
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", ticket.url);
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener("load", () => resolve({ status: xhr.status, text: xhr.responseText }));
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", storeUnreachable)));
    xhr.addEventListener("timeout", () => reject(new ApiError(0, "network", storeUnreachable)));
    xhr.addEventListener("abort", () => reject(abortError()));
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}

const storeUnreachable = "The upload could not reach the store. Check your connection and try again.";

function parseStoreError(text) {
  const doc = new DOMParser().parseFromString(text || "", "application/xml");
  return {
    code: doc.querySelector("Code")?.textContent?.trim() || "",
    message: doc.querySelector("Message")?.textContent?.trim() || "",
  };
}

function storeErrorMessage(status, text) {
  const { code, message } = parseStoreError(text);
  if (code === "EntityTooLarge") return "This file is larger than this upload allows. Try again.";
  if (code === "EntityTooSmall") return "This file is smaller than this upload expected. Try again.";
  if (code === "AccessDenied" && /expired/i.test(message)) {
    return "The upload permission expired before the file was sent. Try again.";
  }
  if (code === "FileAlreadyExists") return "The store already holds an object under this name.";
  if (code) return `The store refused the upload (${code}${message ? `: ${message}` : ""}).`;
  return `The store answered with an unexpected status (${status}).`;
}

// ---------------------------------------------------------------------------------------------- one upload

class Upload {
  constructor(file) {
    this.file = file;
    this.controller = new AbortController();
    this.finished = false;
    this.el = $("#upload-item").content.firstElementChild.cloneNode(true);
    this.progress = $(".upload-progress", this.el);
    this.state = $(".upload-state", this.el);
    this.cancelButton = $(".upload-cancel", this.el);
    $(".upload-name", this.el).textContent = file.name;
    $(".upload-size", this.el).textContent = formatBytes(file.size);
    this.progress.setAttribute("aria-label", `Progress of ${file.name}`);
    this.cancelButton.setAttribute("aria-label", `Cancel ${file.name}`);
    this.cancelButton.addEventListener("click", () => this.controller.abort());
    this.setState("Waiting…");
  }

  setState(text, kind = "") {
    this.state.textContent = text;
    this.el.dataset.state = kind;
  }

  setProgress(fraction) {
    if (fraction == null) this.progress.removeAttribute("value");
    else this.progress.value = Math.round(fraction * 100);
  }

  showResult(json) {
    const details = $(".upload-result", this.el);
    $("pre", details).textContent = JSON.stringify(json, null, 2);
    details.hidden = false;
  }

  finish(text, kind) {
    this.finished = true;
    this.cancelButton.hidden = true;
    this.setState(text, kind);
    this.el.classList.add(`is-${kind}`);
    updateUploadsChrome();
  }

  async run() {
    const signal = this.controller.signal;
    try {
      if (signal.aborted) throw abortError();
      const md5 = await this.hash(signal);
      const answer = await this.requestPolicy(md5);
      if (answer.status === "exists") return this.instant(answer);
      if (answer.status !== "upload") throw new Error("The server gave an answer this page does not know.");
      await this.send(answer, signal);
    } catch (error) {
      this.fail(error);
    }
  }

  async hash(signal) {
    const large = this.file.size >= HASH_PROGRESS_MIN_BYTES;
    this.setState("Checking the file…", "hashing");
    this.setProgress(0);
    return md5OfFile(this.file, signal, (fraction) => {
      if (large) this.setState(`Checking the file… ${Math.round(fraction * 100)}%`, "hashing");
      this.setProgress(fraction);
    });
  }

  async requestPolicy(md5) {
    this.setState("Asking for upload permission…", "policy");
    const body = { filename: this.file.name, size: this.file.size, md5 };
    if (this.file.type && this.file.type.length <= 128) body.content_type = this.file.type;
    return this.withProof("/api/uploads/policy", body);
  }

  // Under global deduplication the server may ask for the MD5 of a byte range to prove we hold the content.
  async withProof(path, body) {
    const answer = await api("POST", path, body);
    if (answer.status !== "proof_required") return answer;
    this.setState("Proving the file is yours…", "policy");
    const { token: proofToken, first, last } = answer.proof;
    const hasher = await newMD5();
    hasher.update(new Uint8Array(await this.file.slice(first, last + 1).arrayBuffer()));
    const proved = await api("POST", path, { ...body, proof: { token: proofToken, md5: hasher.digest("hex") } });
    if (proved.status === "proof_required") throw new Error("The server did not accept the proof of content.");
    return proved;
  }

  instant(answer) {
    this.setProgress(1);
    this.showResult(answer);
    this.finish("Already stored, 0 bytes sent — uploaded instantly.", "instant");
    addToGallery(answer.file);
  }

  async send(ticket, signal) {
    this.setProgress(0);
    this.setState(`Uploading… 0 of ${formatBytes(this.file.size)}`, "uploading");
    const reply = await postToStore(ticket, this.file, signal, (loaded, total) => {
      // loaded/total count the whole form; show the share of the file's own bytes.
      const fraction = total ? Math.min(1, loaded / total) : 1;
      this.setProgress(fraction);
      this.setState(`Uploading… ${formatBytes(Math.round(fraction * this.file.size))} of ${formatBytes(this.file.size)}`, "uploading");
    });
    this.cancelButton.hidden = true;
    if (reply.status === 200) return this.recorded(JSON.parse(reply.text), "Uploaded");
    if (reply.status === 203) return this.complete(ticket);
    throw new Error(storeErrorMessage(reply.status, reply.text));
  }

  async complete(ticket) {
    this.setState("Stored; recording it…", "completing");
    const answer = await this.withProof("/api/uploads/complete", { key: ticket.key, upload_id: ticket.upload_id });
    if (answer.status !== "ok") throw new Error("The server could not record the upload.");
    this.recorded(answer, "Uploaded (recorded after the store's callback failed)");
  }

  recorded(answer, text) {
    this.setProgress(1);
    this.showResult(answer);
    this.finish(`${text}, ${formatBytes(this.file.size)} sent.`, "done");
    addToGallery(answer.file);
  }

  fail(error) {
    if (error?.name === "AbortError") {
      this.finish("Cancelled.", "cancelled");
      return;
    }
    this.finish(describe(error), "error");
  }
}

// ---------------------------------------------------------------------------------------------- queue

const queue = [];
let running = 0;

function addFiles(fileList) {
  if (!token()) return;
  for (const file of fileList) {
    const upload = new Upload(file);
    ui.uploads.prepend(upload.el);
    queue.push(upload);
  }
  updateUploadsChrome();
  pump();
}

function pump() {
  while (running < PARALLEL_UPLOADS && queue.length > 0) {
    const upload = queue.shift();
    running += 1;
    upload.run().finally(() => {
      running -= 1;
      pump();
    });
  }
}

function updateUploadsChrome() {
  const items = [...ui.uploads.children];
  ui.uploadsEmpty.hidden = items.length > 0;
  ui.clearDone.hidden = !items.some((li) => li.classList.contains("is-done") || li.classList.contains("is-instant")
    || li.classList.contains("is-error") || li.classList.contains("is-cancelled"));
}

function clearFinished() {
  for (const li of [...ui.uploads.children]) {
    if (/\bis-(done|instant|error|cancelled)\b/.test(li.className)) li.remove();
  }
  updateUploadsChrome();
}

// ---------------------------------------------------------------------------------------------- drop zone

function wireDropzone() {
  const zone = ui.dropzone;
  zone.addEventListener("click", () => ui.fileInput.click());
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      ui.fileInput.click();
    }
  });
  ui.fileInput.addEventListener("change", () => {
    addFiles(ui.fileInput.files);
    ui.fileInput.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add("is-over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("is-over"));
  }
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    addFiles(e.dataTransfer.files);
  });
  // A file dropped beside the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

// ---------------------------------------------------------------------------------------------- gallery

let nextCursor = null;
const shown = new Map();

async function loadGallery({ more = false } = {}) {
  if (!more) nextCursor = null;
  const params = new URLSearchParams({ limit: String(GALLERY_PAGE) });
  if (more && nextCursor) params.set("cursor", nextCursor);
  ui.galleryStatus.textContent = "Loading your files…";
  try {
    const page = await api("GET", `/api/files?${params}`);
    if (!more) {
      ui.gallery.replaceChildren();
      shown.clear();
    }
    for (const file of page.items) appendCard(file);
    nextCursor = page.next_cursor;
    ui.loadMore.hidden = !nextCursor;
    updateGalleryChrome();
  } catch (error) {
    ui.galleryStatus.textContent = `Could not load your files: ${describe(error)}`;
  }
}

function updateGalleryChrome(message) {
  const count = shown.size;
  ui.galleryCount.textContent = count ? `(${count}${nextCursor ? "+" : ""})` : "";
  ui.galleryStatus.textContent = message ?? (count ? "" : "No files yet. Upload one above.");
}

function addToGallery(file) {
  if (!file || shown.has(file.id)) return;
  ui.gallery.prepend(makeCard(file));
  updateGalleryChrome();
}

function appendCard(file) {
  if (shown.has(file.id)) return;
  ui.gallery.append(makeCard(file));
}

function makeCard(file) {
  const card = $("#gallery-item").content.firstElementChild.cloneNode(true);
  card.dataset.id = String(file.id);
  shown.set(file.id, card);
  $(".card-media", card).append(preview(file));
  $(".card-name", card).textContent = file.name;
  $(".card-name", card).title = file.name;
  $(".card-size", card).textContent = formatBytes(file.size);
  const date = $(".card-date", card);
  date.dateTime = new Date(file.created_at * 1000).toISOString();
  date.textContent = formatDate(file.created_at);
  const download = $(".card-download", card);
  download.href = file.url;
  download.download = file.name;
  download.setAttribute("aria-label", `Download ${file.name}`);
  download.addEventListener("click", (e) => freshDownload(e, file));
  const remove = $(".card-delete", card);
  remove.setAttribute("aria-label", `Delete ${file.name}`);
  remove.addEventListener("click", () => deleteFile(file, card));
  return card;
}

function preview(file) {
  const src = file.thumbnail_url || file.snapshot_url;
  if (!src) {
    const badge = document.createElement("span");
    badge.className = "file-badge";
    badge.textContent = (file.ext || "file").replace(/^\./, "").slice(0, 5).toUpperCase() || "FILE";
    badge.setAttribute("aria-hidden", "true");
    return badge;
  }
  const img = document.createElement("img");
  img.src = src;
  img.loading = "lazy";
  img.decoding = "async";
  img.alt = file.snapshot_url ? `Video frame of ${file.name}` : `Thumbnail of ${file.name}`;
  img.className = file.snapshot_url ? "thumb is-video" : "thumb";
  img.addEventListener("error", () => img.replaceWith(brokenPreview(file)), { once: true });
  return img;
}

function brokenPreview(file) {
  const badge = document.createElement("span");
  badge.className = "file-badge is-broken";
  badge.textContent = "No preview";
  badge.title = `No preview of ${file.name}`;
  return badge;
}

async function freshDownload(event, file) {
  // The signed URL in the card expires after a few minutes: ask for a fresh one each time.
  event.preventDefault();
  try {
    const fresh = await api("GET", `/api/files/${file.id}`);
    const link = document.createElement("a");
    link.href = fresh.url;
    link.download = file.name;
    link.rel = "noopener";
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    updateGalleryChrome(`Could not download ${file.name}: ${describe(error)}`);
  }
}

async function deleteFile(file, card) {
  if (!window.confirm(`Delete “${file.name}”? This cannot be undone.`)) return;
  const buttons = card.querySelectorAll("button, a");
  for (const b of buttons) b.setAttribute("aria-disabled", "true");
  try {
    await api("DELETE", `/api/files/${file.id}`);
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    shown.delete(file.id);
    updateGalleryChrome(`Deleted ${file.name}.`);
    (next ? $(".card-delete", next) : ui.dropzone).focus();
  } catch (error) {
    for (const b of buttons) b.removeAttribute("aria-disabled");
    updateGalleryChrome(`Could not delete ${file.name}: ${describe(error)}`);
  }
}

// ---------------------------------------------------------------------------------------------- start

function start() {
  ui.limit.textContent = formatBytes(config.maxBytes);
  ui.loginForm.addEventListener("submit", devLogin);
  ui.signOut.addEventListener("click", () => signOut());
  ui.clearDone.addEventListener("click", clearFinished);
  ui.refresh.addEventListener("click", () => loadGallery());
  ui.loadMore.addEventListener("click", () => loadGallery({ more: true }));
  wireDropzone();
  takeTokenFromFragment();
  if (token()) showSignedIn();
  else showSignedOut();
  document.body.dataset.ready = "true";
}

start();
