# Capacity, level, latency and losses over time for one scenario.
# gnuplot -c plot-timeline.gp SERIES_DIR SCENARIO OUT.png [XMIN XMAX]
series = ARG1
name = ARG2
out = ARG3
xmin = (ARGC >= 5) ? real(ARG4) : 0
xmax = (ARGC >= 5) ? real(ARG5) : 0

f(q) = sprintf("%s/%s--%s.tsv", series, name, q)

set terminal pngcairo size 1100,1150 font "sans,10"
set output out
set grid
set key top left horizontal opaque box
if (xmax > xmin) { set xrange [xmin:xmax] } else { set autoscale xfix }
set lmargin 10
set rmargin 10
set multiplot layout 4,1 title sprintf("Scenario %s: the adaptive queue (defaults) against JetKVM's step alone and fixed queues", name)

set title "Load sample at each 500 ms tick, and consumer stalls"
set ylabel "%"
set yrange [0:105]
set y2label "stall (ms)"
set y2range [0:1000]
set y2tics 0, 200, 400
plot f("stalls") using 1:2 axes x1y2 with impulses lw 2 lc rgb "#aa3333" title "stall", \
     f("adaptive-no") using 1:8 with lines lc rgb "#1f77b4" title "cpu %" , \
     f("adaptive-no") using 1:9 with lines lc rgb "#2ca02c" title "mem %"
unset y2label
unset y2tics
set y2range [*:*]

set title "Leaky=no: capacity, demand floor and the highest level in each tick interval"
set ylabel "buffers"
set yrange [0:40]
plot f("adaptive-no") using 1:4 with impulses lc rgb "#ff7f0e" title "level (max per tick)", \
     f("adaptive-no") using 1:11 with steps lw 1 lc rgb "#2ca02c" title "demand floor", \
     f("jetkvm-no") using 1:2 with steps lw 1 dt 2 lc rgb "#7f7f7f" title "capacity, JetKVM's step alone", \
     f("adaptive-no") using 1:2 with steps lw 2 lc rgb "#1f77b4" title "capacity, adaptive"

set title "Latency when leaving the queue (max per tick interval)"
set ylabel "ms"
set yrange [0:*]
plot f("fixed-32-no") using 1:5 with lines lc rgb "#999999" title "fixed 32, leaky=no", \
     f("jetkvm-no") using 1:5 with lines dt 2 lc rgb "#7f7f7f" title "JetKVM's step alone, leaky=no", \
     f("adaptive-no") using 1:5 with lines lc rgb "#1f77b4" title "adaptive, leaky=no", \
     f("adaptive-downstream") using 1:5 with lines lc rgb "#d62728" title "adaptive, leaky=downstream"

set title "Frames lost so far (leaky=no: lost by the blocked source; downstream: dropped)"
set ylabel "frames"
set xlabel "time (s)"
plot f("fixed-8-no") using 1:10 with lines lw 2 lc rgb "#8c564b" title "fixed 8, leaky=no", \
     f("fixed-16-no") using 1:10 with lines lw 2 lc rgb "#999999" title "fixed 16, leaky=no", \
     f("fixed-32-no") using 1:10 with lines lw 2 lc rgb "#000000" title "fixed 32, leaky=no", \
     f("jetkvm-no") using 1:10 with lines lw 2 dt 2 lc rgb "#7f7f7f" title "JetKVM's step alone, leaky=no", \
     f("adaptive-no") using 1:10 with lines lw 2 lc rgb "#1f77b4" title "adaptive, leaky=no", \
     f("adaptive-downstream") using 1:10 with lines lw 2 lc rgb "#d62728" title "adaptive, leaky=downstream"

unset multiplot
