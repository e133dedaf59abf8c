"""bench/fleet_mem.py: where a running vigild's heap goes, device by device. A gdb script (not
a standalone program): bench/fleet.py runs it as

    gdb -p PID -batch -x bench/fleet_mem.py

on a vigild built with debug information (the default RelWithDebInfo), for a moment after its
measured passes. It finds the pipeline through main's `struct daemon d`, walks the device table
and adds up the heap chunks each device owns, by part, as glibc sizes them (the chunk header's
size: what the allocation really takes, rounding and header included). A model shared by
several detectors (a group's LSTM, model_share) is counted once, split over its holders.

Prints one line: `MEM devices=N part=bytes ...` (totals over the devices). Parts that the
script does not know (storage's per-device state, SQLite, libuv, free space inside malloc's
arenas) are what the caller's malloc_stats total leaves over. Standard gdb Python only."""
import gdb

inf = gdb.selected_inferior()


def chunk(ptr):
    """Bytes the heap chunk at user pointer ptr takes (0 for NULL): glibc's size field, 8 bytes
    before the pointer, low three bits being flags."""
    p = int(ptr)
    if p == 0:
        return 0
    size = int.from_bytes(bytes(inf.read_memory(p - 8, 8)), "little") & ~7
    return size


def field(v, name):
    try:
        return v[name]
    except gdb.error:
        return None


def find_pipeline():
    for t in inf.threads():
        if t.num != 1:
            continue
        t.switch()
        f = gdb.newest_frame()
        while f is not None:
            if f.name() == "main":
                f.select()
                return gdb.parse_and_eval("d.backend.pipe")
            f = f.older()
    raise gdb.GdbError("fleet_mem: main's frame not found")


def main():
    pipe = find_pipeline()
    dev_t = gdb.lookup_type("struct dev").pointer()
    parts = {}
    holders = {}  # model address -> (bytes, holders seen)
    kinds = {"lstm_serving": 0, "lstm_held_not_serving": 0, "no_lstm": 0}

    def add(k, n):
        parts[k] = parts.get(k, 0) + n

    n = 0
    d = pipe["devs"]
    while int(d) != 0:
        n += 1
        add("dev_struct", chunk(d))
        # A short name lives in the dev struct itself (name_buf, counted in dev_struct): the
        # "chunk header" before it would be the struct's shard field, not a size.
        name = d["name"]
        inline = int(name) == int(d["name_buf"].address)
        add("names_attrs", (0 if inline else chunk(name)) + chunk(d["attrs"]) +
            sum(chunk(d["ch"][i]) for i in range(int(d["nch"]))))
        # The prediction ring: four arrays before session 5, a struct pred_ring since (an exact
        # tail and sealed blocks).
        ring = 0
        r = field(d, "ring")
        if r is None:
            for name in ("ring_ts", "ring_score", "ring_state", "ring_pred"):
                ring += chunk(d[name])
        else:
            ring += chunk(r["tail"]) + chunk(r["blk"])
            room = int(r["blk_room"])
            for i in range(int(r["blk_len"])):
                ring += chunk(r["blk"][(int(r["blk_head"]) + i) % room])
        add("prediction_ring", ring)
        add("events", chunk(d["events"]))
        vers = chunk(d["versions"])
        for i in range(int(d["nversions"])):
            vers += chunk(d["versions"][i]["info_json"])
        add("versions", vers)
        det = d["det"]
        if int(det) != 0:
            add("detector_struct", chunk(det))
            add("detector_block", chunk(det["block"]))
            m = det["lstm"]
            serving = int(det["kind"]) == 2  # DET_KIND_LSTM
            if int(m) == 0:
                kinds["no_lstm"] += 1
            else:
                kinds["lstm_serving" if serving else "lstm_held_not_serving"] += 1
                a = int(m)
                if a not in holders:
                    holders[a] = chunk(m)
        d = d["hh"]["next"].cast(dev_t)
    # Models: each counted once (a group's is split over its members by the division below).
    parts["lstm_weights"] = sum(holders.values())
    parts["lstm_models"] = len(holders)
    kv = " ".join(f"{k}={v}" for k, v in sorted(parts.items()))
    kk = " ".join(f"{k}={v}" for k, v in kinds.items())
    print(f"MEM devices={n} {kv} {kk}", flush=True)


main()
