#!/usr/bin/python3
"""vigild integration: an operator's first stumbles (session 66, task api66, from read66b's
black-box pass; docs/reliability.md "An operator's first stumbles (session 66)").

PutRemoves: a PUT of a device's attributes replaces them all, so {"group": "g1"} on a device
with limits dropped its limits, and their alarms, answered 200 in silence; the answer now warns,
naming each attribute the PUT removed (one sent as null was removed on purpose: no warning).

Python 3 standard library.
"""

import os
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402


def removed(*names):
    """The warning of a PUT that removed the attributes names."""
    it = "them" if len(names) > 1 else "it"
    return ("this PUT removed the device's %s %s (a PUT replaces every attribute: send %s again "
            "to keep %s, or as null to remove %s without this warning)"
            % ("attributes" if len(names) > 1 else "attribute",
               ", ".join("'%s'" % n for n in names), it, it, it))


class PutRemoves(vt.DaemonTestCase):

    def put(self, dev, body=None):
        args = ["-d", body] if body is not None else []
        return self.d.curl("PUT", "/v1/devices/" + dev, *args)

    def test_put_names_what_it_removed(self):
        r = self.put("fs-1", '{"limits":{"t":{"max":9}},"site":"north"}')
        self.assertEqual(r.status, 201, r)
        self.assertNotIn("warnings", r.json())
        r = self.put("fs-1", '{"group":"g1"}')  # read66b's: the limits went in silence
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["attrs"], {"group": "g1"})
        self.assertEqual(r.json()["warnings"], [removed("limits", "site")])
        r = self.put("fs-1", '{"group":"g1","limits":null}')  # null: nothing removed
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("warnings", r.json())
        r = self.put("fs-1", '{"group":null}')  # the null limits removed by omission
        self.assertEqual(r.json()["warnings"], [removed("limits")])
        r = self.put("fs-1")  # no body: the attributes are kept
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("warnings", r.json())
        self.assertEqual(r.json()["attrs"], {"group": None})

    def test_removed_beside_the_limit_warnings(self):
        # A device that has sent readings: the limits' own warnings follow this one.
        self.assertEqual(self.put("fs-2", '{"group":"g2"}').status, 201)
        self.assertEqual(self.d.post_json({"device": "fs-2", "ts": 5, "values": {"t": 1}})
                         .status, 200)
        r = self.put("fs-2", '{"limits":{"zz":{"max":90}}}')
        self.assertEqual(r.status, 200, r)
        w = r.json()["warnings"]
        self.assertEqual(len(w), 2, w)
        self.assertEqual(w[0], removed("group"))
        self.assertTrue(w[1].startswith("limits.zz: "), w)
        self.assertEqual(self.d.device("fs-2")["attrs"], {"limits": {"zz": {"max": 90}}})


if __name__ == "__main__":
    unittest.main()
