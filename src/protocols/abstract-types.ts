/** The abstract data types of RFC 7012 §3.1 and RFC 6313 that the decoders know (no imports: the element
 * generator reads this before the generated table exists). */
export const ABSTRACT_TYPES = [
  "unsigned8",
  "unsigned16",
  "unsigned32",
  "unsigned64",
  "signed8",
  "signed16",
  "signed32",
  "signed64",
  "float32",
  "float64",
  "boolean",
  "macAddress",
  "octetArray",
  "string",
  "dateTimeSeconds",
  "dateTimeMilliseconds",
  "dateTimeMicroseconds",
  "dateTimeNanoseconds",
  "ipv4Address",
  "ipv6Address",
  "basicList",
  "subTemplateList",
  "subTemplateMultiList",
] as const;

export type AbstractType = (typeof ABSTRACT_TYPES)[number];
