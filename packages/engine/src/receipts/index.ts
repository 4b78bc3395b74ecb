export {
  hashOutcomeMessage,
  RECEIPT_ALGORITHM,
  RECEIPT_FORMAT_VERSION,
  RECEIPT_TYPE,
  type ReceiptClaims,
  ReceiptClaimsError,
  type ReceiptOutcome,
  type ReceiptVerification,
  signReceipt,
  verifyReceipt,
} from "./receipt.js";
