// The sans-I/O protocol core, for those who bring their own I/O.
export * from './close.js';
export * from './connection.js';
export * from './frame.js';
export * from './handshake.js';
export * from './http.js';
export * from './http-request.js';
export * from './extensions.js';
export * from './mask.js';
export * from './utf8.js';
