// The one error type of the hub client. `code` is the hub's own code when the hub refused something
// (docs/protocol.md: bad_request, invalid_channel, unauthorized, forbidden, too_large, rate_limited,
// too_many_subscriptions, not_subscribed, unavailable, not_found …), or one of the client's:
//   closed            close() was called, or the client closed itself after an auth failure
//   connection_lost   the connection dropped before the hub answered; a publish may or may not be stored
//   network           an HTTP request did not get an answer (refused, reset, DNS …)
//   timeout           no answer within requestTimeoutMs (or connectTimeoutMs for opening)
//   queue_full        more than maxQueue requests waiting for a connection
//   already_subscribed  this client already has a subscription to the channel
//   protocol          the hub answered with something this client does not understand

export class HubError extends Error {
  override readonly name = 'HubError';
  readonly code: string;
  /** The HTTP status, when the error came from an HTTP answer. */
  readonly status: number | undefined;
  /** The channel the failed request was about, when there was one. */
  readonly channel: string | undefined;

  constructor(code: string, message: string, details: { status?: number; channel?: string } = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.status = details.status;
    this.channel = details.channel;
  }
}

