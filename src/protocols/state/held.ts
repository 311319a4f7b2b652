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

/** The bytes held by every session of one decoder, and their bound (DecoderOptions.holdMaxBytes). */
export class HeldBudget {
  bytes = 0;
  readonly max: number;
  constructor(max = Number.POSITIVE_INFINITY) {
    this.max = max;
  }
}

/** The held sets of one session. */
export class HeldSets {
  #list: HeldSet[] = [];
  readonly #budget: HeldBudget;

  constructor(budget: HeldBudget = new HeldBudget()) {
    this.#budget = budget;
  }

  get length(): number {
    return this.#list.length;
  }

  /**
   * Holds one set; with `maxSets` already held the oldest makes room. Returns the sets dropped (0 or 1,
   * or 1 when holding is switched off, in which case the set itself is dropped).
   */
  hold(set: HeldSet, maxSets: number, maxMs: number, onDrop?: (hs: HeldSet) => void): number {
    let dropped = 0;
    const budget = this.#budget;
    if (this.#list.length > 0 && this.#list.length >= maxSets) {
      const old = this.#list.shift();
      if (old !== undefined) {
        budget.bytes -= old.data.length;
        onDrop?.(old);
      }
      dropped++;
    }
    if (maxSets <= 0 || maxMs <= 0 || budget.bytes + set.data.length > budget.max) {
      onDrop?.(set);
      return dropped + 1;
    }
    budget.bytes += set.data.length;
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
    for (const hs of ready) this.#budget.bytes -= hs.data.length;
    return ready;
  }

  /** Drops sets held longer than `maxMs`; returns how many. */
  expire(nowMs: number, maxMs: number, onDrop?: (hs: HeldSet) => void): number {
    const before = this.#list.length;
    if (before === 0) return 0;
    this.#list = this.#list.filter((hs) => {
      if (nowMs - hs.heldAtMs <= maxMs) return true;
      this.#budget.bytes -= hs.data.length;
      onDrop?.(hs);
      return false;
    });
    return before - this.#list.length;
  }

  /** The held sets, oldest first (read only). */
  values(): readonly HeldSet[] {
    return this.#list;
  }
}
