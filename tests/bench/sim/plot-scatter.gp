# Frames lost versus p99 latency, one point per queue configuration.
# gnuplot -c plot-scatter.gp POINTS.dat SCENARIO OUT.png
# POINTS.dat rows: group lost_pct p99_ms "label" (written by scripts/bench-sim);
# fixed points that coincide carry one label between them. Groups:
# 1 fixed leaky=no, 2 fixed leaky=downstream, 3 adaptive leaky=no,
# 4 adaptive leaky=downstream, 5 JetKVM's step leaky=no, 6 JetKVM's step
# leaky=downstream, 7 queue-defaults (200 buffers, 1 s, 10 MiB), either mode.
points = ARG1
name = ARG2
out = ARG3

set terminal pngcairo size 800,680 font "sans,10"
set output out
set grid
set key below horizontal maxcols 2 reverse Left
set title sprintf("Scenario %s: frames lost versus p99 latency", name)
set xlabel "frames lost (% of frames captured, log scale; no loss at the left edge)"
set ylabel "p99 latency leaving the queue (ms)"

# No loss cannot sit on a log axis: give it its own tick left of the data
# (the smallest possible loss here is 1 frame in 150000, 0.00067 %).
none = 0.0002
set logscale x
stats points using 2:3 nooutput
set xrange [none / 1.5 : (STATS_max_x > 1 ? STATS_max_x * 4 : 4)]
set yrange [-0.05 * (STATS_max_y > 0 ? STATS_max_y : 10) : 1.15 * (STATS_max_y > 0 ? STATS_max_y : 10)]
set xtics add ("none" none)

sel(g) = (column(1) == g) ? (column(2) > 0 ? column(2) : none) : NaN
plot points using (sel(1)):3 with points pt 7 ps 1.4 lc rgb "#1f77b4" title "fixed, leaky=no", \
     points using (sel(2)):3 with points pt 9 ps 1.6 lc rgb "#ff7f0e" title "fixed, leaky=downstream", \
     points using (sel(1)):3:4 with labels left offset 0.8,0.8 tc rgb "#1f77b4" notitle, \
     points using (sel(2)):3:4 with labels left offset 0.8,-0.8 tc rgb "#ff7f0e" notitle, \
     points using (sel(3)):3 with points pt 3 ps 2.6 lw 2 lc rgb "#d62728" title "adaptive (defaults), leaky=no", \
     points using (sel(4)):3 with points pt 2 ps 2.6 lw 2 lc rgb "#9467bd" title "adaptive (defaults), leaky=downstream", \
     points using (sel(5)):3 with points pt 6 ps 2.0 lw 2 lc rgb "#7f7f7f" title "JetKVM's step alone (demand-headroom 0), leaky=no", \
     points using (sel(6)):3 with points pt 4 ps 2.0 lw 2 lc rgb "#7f7f7f" title "JetKVM's step alone, leaky=downstream", \
     points using (sel(7)):3 with points pt 12 ps 2.2 lw 2 lc rgb "#2ca02c" title "queue-defaults (200 buffers, 1 s, 10 MiB)"
