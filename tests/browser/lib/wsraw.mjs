// wsraw.mjs: a minimal WebSocket client over a raw TCP socket (RFC 6455), enough for the
// feed's tests: text frames, masking, ping/pong. `paused: true` makes a client that never
// reads from its socket after the handshake (the deliberately slow client).

import { createConnection } from 'node:net';
import { randomBytes } from 'node:crypto';

export function wsConnect(port, { path = '/api/v1/ws', origin, protocols = ['netwatch.v1'], paused = false, onMessage } = {}) {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const key = randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let open = false;
    const client = {
      sock,
      messages: 0,
      closed: false,
      closeCode: null,
      send(obj) {
        const payload = Buffer.from(JSON.stringify(obj));
        sock.write(frame(0x1, payload));
      },
      close() {
        sock.destroy();
      },
    };
    sock.on('connect', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        (protocols.length ? `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n` : '') +
        `Origin: ${origin || `http://127.0.0.1:${port}`}\r\n\r\n`);
    });
    sock.on('error', (e) => {
      client.closed = true;
      if (!open) reject(e);
    });
    sock.on('close', () => {
      client.closed = true;
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        buf = buf.subarray(end + 4);
        if (!/^HTTP\/1\.1 101/.test(head)) {
          reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
          sock.destroy();
          return;
        }
        open = true;
        resolve(client);
        if (paused) {
          sock.pause(); // never read again: the kernel buffers fill, then the server's queue
          return;
        }
      }
      for (;;) {
        const f = parse(buf);
        if (!f) break;
        buf = buf.subarray(f.length);
        if (f.opcode === 0x1) {
          client.messages += 1;
          if (onMessage) onMessage(JSON.parse(f.payload.toString()), client);
        } else if (f.opcode === 0x9) {
          sock.write(frame(0xa, f.payload));
        } else if (f.opcode === 0x8) {
          client.closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
          sock.end();
        }
      }
    });
  });
}

function frame(opcode, payload) {
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len])
    : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, body]);
}

function parse(buf) {
  if (buf.length < 2) return null;
  const opcode = buf[0] & 0x0f;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  if (buf.length < off + len) return null;
  return { opcode, payload: buf.subarray(off, off + len), length: off + len };
}
