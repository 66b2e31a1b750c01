/** HTTP/2 (RFC 9113) constants shared by the connection and its streams. */

export const FRAME_HEADER = 9;
/** Frame flags. */
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY = 0x20;
export const MAX_WINDOW = 2 ** 31 - 1;

/** RFC 9113 §7 error codes. */
export enum H2Error {
  NoError = 0x0,
  ProtocolError = 0x1,
  InternalError = 0x2,
  FlowControlError = 0x3,
  StreamClosed = 0x5,
  FrameSizeError = 0x6,
  RefusedStream = 0x7,
  Cancel = 0x8,
  CompressionError = 0x9,
  EnhanceYourCalm = 0xb,
}
