import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One request that went through the proxy to the registry. */
export interface ProxiedRequest {
  readonly method: string;
  /** Path and query as the client sent it (`/v2/<name>/blobs/uploads/<id>?digest=sha256:…`). */
  readonly url: string;
  /** Bytes of request body the client sent: what an upload costs on the wire. */
  readonly bytesIn: number;
  /** Bytes of response body the registry sent back: what a pull costs. */
  readonly bytesOut: number;
  /** The registry's status code. */
  readonly status: number;
}

/**
 * A plain-HTTP proxy on a free loopback port in front of a registry, counting the request and
 * response bytes of every request it forwards. Docker treats loopback registries as insecure (plain
 * HTTP) by default, so the engine pushes through it as it would to the registry itself. The Host
 * header is forwarded unchanged, so the upload locations the registry hands out point back at the
 * proxy. It runs in a process of its own and records to a file, so that a test blocked in a
 * synchronous call (skopeo, `docker pull`) through the proxy cannot stall it.
 */
export interface CountingProxy {
  readonly pid: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** Every request forwarded since the start or the last `reset()`, in the order they completed. */
  requests(): readonly ProxiedRequest[];
  reset(): void;
  stop(): Promise<void>;
}

/** The proxy process: `node -e PROXY_SOURCE <target host:port> <record file>`; prints its port. */
const PROXY_SOURCE = `
const http = require('node:http');
const fs = require('node:fs');
const [target, file] = process.argv.slice(1);
const [host, port] = target.split(':');
const server = http.createServer((incoming, outgoing) => {
  let bytesIn = 0;
  incoming.on('data', (chunk) => { bytesIn += chunk.length; });
  const forwarded = http.request(
    { host, port: Number(port), method: incoming.method, path: incoming.url, headers: incoming.headers },
    (response) => {
      let bytesOut = 0;
      response.on('data', (chunk) => { bytesOut += chunk.length; });
      response.on('end', () => {
        const record = { method: incoming.method, url: incoming.url, bytesIn, bytesOut, status: response.statusCode };
        fs.appendFileSync(file, JSON.stringify(record) + '\\n');
      });
      outgoing.writeHead(response.statusCode, response.headers);
      response.pipe(outgoing);
    },
  );
  forwarded.on('error', (err) => { outgoing.writeHead(502); outgoing.end(String(err)); });
  incoming.pipe(forwarded);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

/** Starts a counting proxy in front of the registry at `target` (`host:port`, plain HTTP). */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'pl-registry-proxy-'));
  const file = join(dir, 'requests.jsonl');
  writeFileSync(file, '');
  const child = spawn(process.execPath, ['-e', PROXY_SOURCE, target, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the registry proxy did not start (no pid)');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('\n')) resolve(output.trim());
    });
    child.once('exit', (code) =>
      reject(new Error(`the registry proxy exited with ${code} before listening`)),
    );
  });
  return {
    pid,
    address: `127.0.0.1:${port}`,
    requests: () =>
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as ProxiedRequest),
    reset: () => writeFileSync(file, ''),
    stop: async () => {
      if (child.exitCode === null) {
        process.kill(pid, 'SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What a build cost the registry: bytes sent as blob uploads and as manifests, and the blobs that were uploaded. */
export interface UploadSummary {
  /** Request bytes of blob uploads (POST, PATCH and PUT under `/blobs/uploads/`). */
  readonly blobBytes: number;
  /** Request bytes of manifest PUTs (one per pushed tag). */
  readonly manifestBytes: number;
  readonly manifestPuts: number;
  /** Digests of the blobs whose upload completed (the `digest` of each final PUT). */
  readonly uploadedDigests: readonly string[];
  /** Response bytes of blob GETs: layers and configs pulled (the cache the build reused). */
  readonly pulledBytes: number;
  /** Every request the build made, uploads or not (existence checks, mounts, …). */
  readonly requests: number;
}

/** Sums the registry requests of one build (Distribution API: blob uploads and manifest PUTs). */
export function summarizeUploads(requests: readonly ProxiedRequest[]): UploadSummary {
  let blobBytes = 0;
  let manifestBytes = 0;
  let manifestPuts = 0;
  let pulledBytes = 0;
  const uploadedDigests: string[] = [];
  for (const r of requests) {
    const url = new URL(r.url, 'http://registry');
    if (r.method === 'GET' && /\/blobs\/sha256:/.test(url.pathname)) pulledBytes += r.bytesOut;
    if (/\/blobs\/uploads\//.test(url.pathname)) {
      blobBytes += r.bytesIn;
      const digest = url.searchParams.get('digest');
      if (r.method === 'PUT' && digest && r.status === 201) uploadedDigests.push(digest);
    } else if (r.method === 'PUT' && /\/manifests\//.test(url.pathname)) {
      manifestBytes += r.bytesIn;
      manifestPuts += 1;
    }
  }
  return { blobBytes, manifestBytes, manifestPuts, uploadedDigests, pulledBytes, requests: requests.length };
}

/** A blob an image manifest refers to. */
export interface ManifestBlob {
  readonly digest: string;
  /** Compressed size in bytes, as the manifest states it. */
  readonly size: number;
}

/** The parts of a pushed single-platform image manifest (Docker v2 schema 2 or OCI). */
export interface ImageManifest {
  readonly config: ManifestBlob;
  readonly layers: readonly ManifestBlob[];
  /** Bytes of the manifest itself. */
  readonly bytes: number;
}

/** Reads `<repository>:<reference>`'s manifest from a plain-HTTP registry. */
export async function fetchImageManifest(
  registryAddress: string,
  repository: string,
  reference: string,
): Promise<ImageManifest> {
  const response = await fetch(`http://${registryAddress}/v2/${repository}/manifests/${reference}`, {
    headers: {
      accept: [
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.oci.image.manifest.v1+json',
      ].join(', '),
    },
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`manifest ${repository}:${reference}: HTTP ${response.status} ${text}`);
  const manifest = JSON.parse(text) as { config?: ManifestBlob; layers?: ManifestBlob[] };
  if (!manifest.config || !manifest.layers) {
    throw new Error(
      `${repository}:${reference} is not a single-platform image manifest: ${text.slice(0, 200)}`,
    );
  }
  return { config: manifest.config, layers: manifest.layers, bytes: Buffer.byteLength(text) };
}
