// The public API of duplex.
export { WebSocket, PreparedMessage, type WebSocketOptions, type SendOptions } from './websocket/websocket.js';
export { WebSocketServer, type ServerOptions, type BroadcastOptions, type VerifyInfo, type VerifyResult } from './websocket/server.js';
export { MessageEvent, CloseEvent, ErrorEvent, WsEvent, type BinaryType } from './websocket/events.js';
export { CloseCode } from './protocol/close.js';
