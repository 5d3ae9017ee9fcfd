// Plain sockets done right: message framing over TCP, a TCP server helper, UDP datagrams.
export * from './endpoint.js';
export * from './framing.js';
export * from './framed-socket.js';
export * from './tcp-client.js';
export * from './tcp-server.js';
export * from './udp.js';
export { FileReceiver, FileTransferError, sendFile, type FailureInfo, type FileReceiverOptions, type FileTransferErrorCode, type ReceivedInfo, type SendFileOptions, type SendResult, type TransferInfo } from './file-transfer.js';
