/**
 * Information element registry for the NetFlow v9 and IPFIX decoders.
 *
 * Tables (src/protocols/elements.generated.ts, built by tools/gen-elements.ts from tools/data/):
 * - IANA "IPFIX Information Elements" (RFC 7012 §4; ids 1..32767, enterprise bit clear, PEN 0);
 * - vendor elements: NetFlow v9 field types outside the IANA assignments (stored with PEN 0, e.g. the
 *   Cisco ASA NSEL 33000.. / 40000.. types and TrustSec 34000..34003) and IPFIX enterprise-specific
 *   elements keyed by Private Enterprise Number.
 * RFC 5103 reverse elements (PEN 29305) are derived from the IANA table.
 *
 * Lookups are called once per template field; each is an array index or one Map lookup.
 */
import type { AbstractType } from "./abstract-types.ts";
import { IANA_ELEMENTS, VENDOR_ELEMENTS } from "./elements.generated.ts";

export { ABSTRACT_TYPES, type AbstractType } from "./abstract-types.ts";

export interface ElementDef {
  readonly pen: number;
  readonly id: number;
  readonly name: string;
  readonly type: AbstractType;
}

/** RFC 5103 §6.1: the Reverse Information Element Private Enterprise Number. */
const REVERSE_PEN = 29305;

/**
 * IANA elements that RFC 5103 §6.1 declares not reversible: flowId, templateId, observationDomainId,
 * commonPropertiesId; the process configuration elements (RFC 5102 §5.2) and process statistics
 * elements (§5.3); paddingOctets. biflowDirection (239, defined by RFC 5103 itself for the biflow as a
 * whole) is treated as not reversible too.
 */
const NOT_REVERSIBLE: ReadonlySet<number> = new Set([
  137, 145, 148, 149, 130, 131, 173, 211, 212, 213, 214, 215, 216, 217, 40, 41, 42, 163, 164, 165, 166, 167,
  168, 210, 239,
]);

const IANA_ID_LIMIT = 0x8000;
const iana: Array<ElementDef | undefined> = new Array(IANA_ID_LIMIT);
const reverse: Array<ElementDef | undefined> = new Array(IANA_ID_LIMIT);
for (const [id, name, type] of IANA_ELEMENTS) {
  iana[id] = Object.freeze({ pen: 0, id, name, type });
  if (!NOT_REVERSIBLE.has(id)) {
    const reverseName = `reverse${name.charAt(0).toUpperCase()}${name.slice(1)}`;
    reverse[id] = Object.freeze({ pen: REVERSE_PEN, id, name: reverseName, type });
  }
}

/** Vendor table keyed by pen * 2^16 + id (< 2^48, an exact integer). */
const vendor = new Map<number, ElementDef>();
for (const [pen, id, name, type] of VENDOR_ELEMENTS) {
  vendor.set(pen * 0x10000 + id, Object.freeze({ pen, id, name, type }));
}

/**
 * IPFIX lookup: pen 0 = IANA; pen 29305 = RFC 5103 reverse element of IANA id (name "reverse" + Name
 * with first letter capitalised, same type, except the elements RFC 5103 says are not reversible);
 * other pens = vendor table.
 */
export function ipfixElement(pen: number, id: number): ElementDef | undefined {
  if (pen === 0) return iana[id];
  if (pen === REVERSE_PEN) return reverse[id];
  return vendor.get(pen * 0x10000 + id);
}

/**
 * NetFlow v9 field type (no enterprise bit in v9): 1..32767 as IANA (v9 types 1–127 are the IANA ids),
 * and the Cisco/vendor v9 types ≥ 32768 (33000.., 34000.., 40000..) from the vendor table with pen 0.
 * Vendor v9 types below 32768 that IANA has not assigned (Streamcore 8192..) are found there too.
 */
export function netflow9Field(type: number): ElementDef | undefined {
  return iana[type] ?? vendor.get(type);
}

/**
 * A name for any element: the def's name, else `<pen>.<id>`. For pen 0 the NetFlow v9 view is used
 * (IANA, then v9 vendor types), so v9 decoders can pass pen 0 and the field type.
 */
export function elementName(pen: number, id: number): string {
  const def = pen === 0 ? netflow9Field(id) : ipfixElement(pen, id);
  return def ? def.name : `${pen}.${id}`;
}
