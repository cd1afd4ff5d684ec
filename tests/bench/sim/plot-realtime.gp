# A real-time sink's scenario over time: network holds, level, latency,
# losses and underruns.
# gnuplot -c plot-realtime.gp SERIES_DIR SCENARIO OUT.png
series = ARG1
name = ARG2
out = ARG3

f(q) = sprintf("%s/%s--%s.tsv", series, name, q)

set terminal pngcairo size 1100,1150 font "sans,10"
set output out
set grid
set key top left horizontal opaque box
set autoscale xfix
set lmargin 10
set rmargin 10
set multiplot layout 4,1 title sprintf("Scenario %s: a real-time sink behind the adaptive queue and fixed queues", name)

set title "Network holds: frames held, then released together"
set ylabel "hold (ms)"
set yrange [0:*]
plot f("holds") using 1:2 with impulses lw 2 lc rgb "#aa3333" title "hold"

set title "Frames queued (max per tick interval), leaky=downstream, and the level the trimming keeps"
set ylabel "buffers"
set yrange [0:40]
plot f("fixed-32-downstream") using 1:4 with lines lc rgb "#999999" title "level, fixed 32", \
     f("adaptive-downstream") using 1:4 with lines lc rgb "#2ca02c" title "level, adaptive", \
     f("adaptive-downstream") using 1:14 with steps lw 2 lc rgb "#1f77b4" title "keep level (95th percentile of the need)"

set title "Latency when leaving the queue (max per tick interval), leaky=downstream"
set ylabel "ms"
set yrange [0:*]
plot f("fixed-32-downstream") using 1:5 with lines lc rgb "#999999" title "fixed 32", \
     f("fixed-8-downstream") using 1:5 with lines lc rgb "#8c564b" title "fixed 8", \
     f("adaptive-downstream") using 1:5 with lines lc rgb "#2ca02c" title "adaptive"

set title "Frames lost (dropped) and sink underruns so far, leaky=downstream"
set ylabel "frames"
set xlabel "time (s)"
plot f("fixed-8-downstream") using 1:10 with lines lw 2 lc rgb "#8c564b" title "lost, fixed 8", \
     f("fixed-32-downstream") using 1:10 with lines lw 2 lc rgb "#000000" title "lost, fixed 32", \
     f("adaptive-downstream") using 1:10 with lines lw 2 lc rgb "#2ca02c" title "lost, adaptive", \
     f("fixed-32-downstream") using 1:12 with lines lw 1 dt 2 lc rgb "#000000" title "underruns, fixed 32", \
     f("adaptive-downstream") using 1:12 with lines lw 1 dt 2 lc rgb "#2ca02c" title "underruns, adaptive"

unset multiplot
