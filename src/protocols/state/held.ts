/**
 * Data sets held while their template is missing (DESIGN §4): a copy of the set's bytes with the header
 * it came with, kept in its transport session, bounded in count per session and in time. A held set is
 * decoded when its template arrives; when the hold overflows or expires it is counted as a missing-template
 * drop (only then: a set decoded later is not lost).
 */
import type { MessageHeader } from "../netflow/header.ts";

export interface HeldSet {
  /** templateKey(domain, set id) */
  key: number;
  setId: number;
  /** A copy: the datagram's buffer is not ours to keep. */
  data: Buffer;
  h: MessageHeader;
  receivedMs: number;
  heldAtMs: number;
}

/** The held sets of one session. */
export class HeldSets {
  #list: HeldSet[] = [];

  get length(): number {
    return this.#list.length;
  }

  /**
   * Holds one set; with `maxSets` already held the oldest makes room. Returns the sets dropped (0 or 1,
   * or 1 when holding is switched off, in which case the set itself is dropped).
   */
  hold(set: HeldSet, maxSets: number, maxMs: number): number {
    let dropped = 0;
    if (this.#list.length > 0 && this.#list.length >= maxSets) {
      this.#list.shift();
      dropped++;
    }
    if (maxSets <= 0 || maxMs <= 0) return dropped + 1;
    this.#list.push(set);
    return dropped;
  }

  /** Removes and returns the sets waiting for `key` (and accepted by `accept`), oldest first. */
  take(key: number, accept?: (hs: HeldSet) => boolean): HeldSet[] {
    const ready: HeldSet[] = [];
    const keep: HeldSet[] = [];
    for (const hs of this.#list)
      (hs.key === key && (accept === undefined || accept(hs)) ? ready : keep).push(hs);
    if (ready.length === 0) return ready;
    this.#list = keep;
    return ready;
  }

  /** Drops sets held longer than `maxMs`; returns how many. */
  expire(nowMs: number, maxMs: number): number {
    const before = this.#list.length;
    if (before === 0) return 0;
    this.#list = this.#list.filter((hs) => nowMs - hs.heldAtMs <= maxMs);
    return before - this.#list.length;
  }
}
