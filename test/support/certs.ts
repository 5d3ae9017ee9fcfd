// A throwaway PKI for the wss:// tests, made at test time with the openssl CLI so that no key is ever
// committed: a self-signed CA and the server and client certificates it signs. The files live in a fresh temporary
// directory only while openssl runs; callers get PEM text and the directory is gone before they do.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL_TIMEOUT_MS = 20_000;
// EC keys: generating them takes milliseconds, where RSA keys can take seconds on a slow machine.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface Certificate {
  key: string;
  cert: string;
}

export interface TestPki {
  /** The CA certificate both ends trust. */
  ca: string;
  /** A server certificate for localhost, 127.0.0.1 and ::1. */
  localhost: Certificate;
  /** A server certificate for the single name `sni.test`, to tell which certificate a server picked by SNI. */
  sni: Certificate;
  /** A client certificate (CN=duplex test client), for servers that ask for one. */
  client: Certificate;
}

export const SNI_NAME = 'sni.test';
export const CLIENT_NAME = 'duplex test client';

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir, timeout: OPENSSL_TIMEOUT_MS });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${(err as Error).message}\n${stderr}`);
  }
}

/** Issues a certificate signed by the CA in `dir`; `extensions` are added to the usual end-entity ones. */
async function issue(dir: string, name: string, subject: string, extensions: string[]): Promise<Certificate> {
  const lines = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', ...extensions].join('\n');
  await writeFile(path.join(dir, `${name}.ext`), `${lines}\n`);
  await openssl(dir, ['req', '-new', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${subject}`]);
  await openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
  ]);
  return {
    key: await readFile(path.join(dir, `${name}.key`), 'utf8'),
    cert: await readFile(path.join(dir, `${name}.crt`), 'utf8'),
  };
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(path.join(tmpdir(), 'duplex-certs-'));
  try {
    await openssl(dir, [
      'req', '-x509', ...NEW_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=duplex test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const server = 'extendedKeyUsage=serverAuth';
    const localhost = await issue(dir, 'localhost', 'localhost', [server, 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1']);
    const sni = await issue(dir, 'sni', SNI_NAME, [server, `subjectAltName=DNS:${SNI_NAME}`]);
    const client = await issue(dir, 'client', CLIENT_NAME, ['extendedKeyUsage=clientAuth']);
    return { ca: await readFile(path.join(dir, 'ca.crt'), 'utf8'), localhost, sni, client };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
