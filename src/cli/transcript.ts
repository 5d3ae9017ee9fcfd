// How `duplex connect` shows a conversation on stdout.
//
// Piped (stdout not a terminal) the output is undecorated so that scripts can consume it: one line per
// message, the text as received, a binary message as one line of base64 (`base64 -d` restores it).
// On a terminal, received messages start with "< ", lines sent from a non-terminal stdin are echoed
// with "> ", binary messages are labelled, and markers are coloured unless NO_COLOR is set.
import { clearLine, cursorTo, type Interface } from 'node:readline';

export interface Received {
  readonly isBinary: boolean;
  readonly rawData: Buffer;
}

const CYAN = '\x1b[36m';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

export class Transcript {
  private readonly decorated: boolean;
  private readonly color: boolean;

  /** `prompt` is the interactive line editor, redrawn below each message so typing is not disturbed. */
  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly prompt?: Interface,
  ) {
    this.decorated = out.isTTY === true;
    this.color = this.decorated && !process.env.NO_COLOR;
  }

  received(message: Received): void {
    if (!this.decorated) {
      const line = message.isBinary ? message.rawData.toString('base64') : message.rawData.toString('utf8');
      this.out.write(`${line}\n`);
      return;
    }
    const body = message.isBinary
      ? `${this.paint(DIM, `(binary, ${message.rawData.length} bytes, base64)`)} ${message.rawData.toString('base64')}`
      : message.rawData.toString('utf8');
    this.writeAbovePrompt(`${this.paint(CYAN, '<')} ${body}`);
  }

  /** Lines typed at the prompt are already on screen; only lines read from a pipe need showing. */
  sent(line: string): void {
    if (this.decorated && !this.prompt) this.out.write(`${this.paint(DIM, '>')} ${line}\n`);
  }

  /** Removes the prompt line so that whatever follows (a status on stderr, the shell) starts clean. */
  clearPrompt(): void {
    if (!this.prompt) return;
    clearLine(this.out, 0);
    cursorTo(this.out, 0);
  }

  private writeAbovePrompt(line: string): void {
    this.clearPrompt();
    this.out.write(`${line}\n`);
    this.prompt?.prompt(true);
  }

  private paint(code: string, text: string): string {
    return this.color ? `${code}${text}${RESET}` : text;
  }
}
