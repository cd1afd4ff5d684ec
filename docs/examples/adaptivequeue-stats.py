#!/usr/bin/env python3
"""Watch adaptivequeue from Python.

Runs a live audio graph through the element,

    audiotestsrc is-live=true ! adaptivequeue ! fakesink sync=true

prints its "stats" structure once a second and each
"adaptivequeue-adaptation" message as it arrives, and halfway through
retunes it while PLAYING (by default max-buffers=8 and leaky=downstream: a
tighter latency budget that drops old audio rather than block the source).
At the end it sends EOS and waits for it, as an application that shuts down
cleanly does.

    GST_PLUGIN_PATH=build/gst python3 docs/examples/adaptivequeue-stats.py --duration 10

Needs PyGObject and the GStreamer typelib (Debian: python3-gi and
gir1.2-gstreamer-1.0, for Debian's /usr/bin/python3).

Exits 0 when the run ended with EOS, no error was posted, and every stats
read after a decision had a capacity within min-buffers..max-buffers as set
at that time, or at the demand floor above max-buffers (a live upstream's
recent demand may take it past max-buffers); with --require-adaptation, at least one adaptation message
must also have arrived.

SPDX-License-Identifier: LGPL-2.1-or-later
"""

import argparse
import sys
import time

try:
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst
except (ImportError, ValueError) as err:
    sys.exit("this example needs PyGObject and the GStreamer 1.0 typelib "
             "(Debian: apt-get install python3-gi gir1.2-gstreamer-1.0, "
             f"then run it with /usr/bin/python3): {err}")

PIPELINE = ("audiotestsrc is-live=true samplesperbuffer=441 "
            "! adaptivequeue name=queue adaptation-interval=250000000 "
            "! fakesink sync=true")


class Watcher:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.start = time.monotonic()
        self.adaptations = 0
        self.good_reads = 0
        self.bad_reads = 0
        self.decisions_at_retune = None
        self.eos = False
        self.failed = False
        self.stopping = False

        # parse_launch raises GLib.Error when an element is missing.
        try:
            self.pipeline = Gst.parse_launch(PIPELINE)
        except GLib.Error as err:
            sys.exit(f"{err.message}: point GST_PLUGIN_PATH at the build's gst/ "
                     "directory, or install the plugin")
        self.queue = self.pipeline.get_by_name("queue")
        self.set_properties(args.set)

    def elapsed(self):
        return time.monotonic() - self.start

    def set_properties(self, settings):
        for setting in settings:
            name, sep, value = setting.partition("=")
            if not sep or self.queue.find_property(name) is None:
                sys.exit(f"--set/--retune {setting}: expected PROPERTY=VALUE "
                         "with an adaptivequeue property")
            # Parses the value as gst-launch does: numbers, booleans, enum nicks.
            Gst.util_set_object_arg(self.queue, name, value)

    def on_message(self, bus, message):
        kind = message.type
        if kind == Gst.MessageType.ELEMENT and message.src == self.queue:
            s = message.get_structure()
            if s.get_name() == "adaptivequeue-adaptation":
                self.adaptations += 1
                latency = s.get_value("latency-average")  # -1: no sample yet
                print(f"{self.elapsed():6.2f} s  adaptation  capacity "
                      f"{s.get_value('old-capacity')} -> {s.get_value('new-capacity')}  "
                      f"(cpu {s.get_value('cpu-percent'):.1f} %, "
                      f"mem {s.get_value('mem-percent'):.1f} %, "
                      f"latency {max(latency, 0) / 1e6:.2f} ms, "
                      f"factor {s.get_value('combined-factor'):+.2f})")
        elif kind == Gst.MessageType.WARNING:
            # e.g. an invalid configuration or an unreadable proc-root: the
            # element keeps running, so report and carry on.
            err, _debug = message.parse_warning()
            print(f"warning from {message.src.get_name()}: {err.message}",
                  file=sys.stderr)
        elif kind == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            print(f"error from {message.src.get_name()}: {err.message}\n{debug}",
                  file=sys.stderr)
            self.failed = True
            self.loop.quit()
        elif kind == Gst.MessageType.EOS:
            print(f"{self.elapsed():6.2f} s  EOS reached the sink")
            self.eos = True
            self.loop.quit()

    def read_stats(self):
        # The property returns a copy of the structure.
        s = self.queue.get_property("stats")
        capacity = s.get_value("capacity")
        latency = s.get_value("latency-average")
        decisions = s.get_value("ticks") - s.get_value("skipped-ticks")
        print(f"{self.elapsed():6.2f} s  stats       capacity {capacity}, "
              f"level {s.get_value('current-level-buffers')}, "
              f"latency {max(latency, 0) / 1e6:.2f} ms, "
              f"cpu {s.get_value('cpu-percent'):.1f} %, "
              f"mem {s.get_value('mem-percent'):.1f} %, "
              f"adaptations {s.get_value('adaptations')}, "
              f"ticks {s.get_value('ticks')}, drops {s.get_value('drops')}")

        # The bounds apply from the first decision after they were set.
        since = self.decisions_at_retune if self.decisions_at_retune is not None else 0
        if decisions > since and self.queue.get_property("adaptive"):
            low = self.queue.get_property("min-buffers")
            # Recent demand may hold a live queue above max-buffers.
            high = max(self.queue.get_property("max-buffers"), s.get_value("demand-floor"))
            if low <= capacity <= high:
                self.good_reads += 1
            else:
                print(f"capacity {capacity} is outside min-buffers..max(max-buffers, "
                      f"demand-floor) ({low}..{high})", file=sys.stderr)
                self.bad_reads += 1
        return GLib.SOURCE_CONTINUE

    def retune(self):
        s = self.queue.get_property("stats")
        self.decisions_at_retune = s.get_value("ticks") - s.get_value("skipped-ticks")
        print(f"{self.elapsed():6.2f} s  retune      {' '.join(self.args.retune)}")
        self.set_properties(self.args.retune)
        return GLib.SOURCE_REMOVE

    def stop(self):
        # EOS from the source, then wait for it on the bus.
        if not self.stopping:
            self.stopping = True
            self.pipeline.send_event(Gst.Event.new_eos())
            GLib.timeout_add_seconds(5, self.eos_timeout)
        return GLib.SOURCE_REMOVE

    def eos_timeout(self):
        print("EOS did not reach the sink within 5 s", file=sys.stderr)
        self.failed = True
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def run(self):
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            print("the pipeline refused to start", file=sys.stderr)
            self.failed = True
        else:
            self.start = time.monotonic()
            duration_ms = int(self.args.duration * 1000)
            GLib.timeout_add(1000, self.read_stats)
            if self.args.retune:
                GLib.timeout_add(duration_ms // 2, self.retune)
            GLib.timeout_add(duration_ms, self.stop)
            try:
                self.loop.run()
            except KeyboardInterrupt:
                self.failed = True
            self.read_stats()
        self.pipeline.set_state(Gst.State.NULL)
        bus.remove_signal_watch()

        print(f"summary: {self.adaptations} adaptation messages, "
              f"{self.good_reads} stats reads in bounds, {self.bad_reads} out of bounds")
        if self.failed or not self.eos or self.bad_reads:
            return 1
        if self.good_reads == 0:
            print("no stats read after a decision: the run was too short, or no "
                  "load sample could be read (see the warnings above)", file=sys.stderr)
            return 1
        if self.args.require_adaptation and self.adaptations == 0:
            print("no adaptation message arrived", file=sys.stderr)
            return 1
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="run time in seconds (default 10)")
    parser.add_argument("--set", action="append", default=[], metavar="PROPERTY=VALUE",
                        help="an adaptivequeue property set before starting (repeatable)")
    parser.add_argument("--retune", action="append", metavar="PROPERTY=VALUE",
                        help="a property set halfway through, while PLAYING (repeatable; "
                             "default: max-buffers=8 leaky=downstream)")
    parser.add_argument("--no-retune", action="store_true",
                        help="keep the starting properties for the whole run")
    parser.add_argument("--require-adaptation", action="store_true",
                        help="fail unless at least one adaptation message arrives")
    args = parser.parse_args()
    if args.duration <= 0:
        parser.error("--duration must be positive")
    if args.no_retune:
        args.retune = []
    elif not args.retune:
        args.retune = ["max-buffers=8", "leaky=downstream"]

    Gst.init(None)
    return Watcher(args).run()


if __name__ == "__main__":
    sys.exit(main())
