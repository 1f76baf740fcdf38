set terminal png noenhanced size 700,450
set output 'docs/bench-publish-rate.png'
set logscale x 10
set logscale y 10
set grid
set key top left
set xlabel 'offered load (per second)'
set ylabel 'latency from intended send (us)'
set format x '%.0s%c'
set title 'zcluster bench publish --rate, 64 B messages'
plot 'docs/bench-publish-rate.dat' index 0 using 1:2 with linespoints lw 2 title 'zcluster p50', '' index 0 using 1:3 with linespoints lw 2 title 'zcluster p99', '' index 0 using 1:4 with linespoints lw 2 dt 2 title 'zmq-pubsub p50', '' index 0 using 1:5 with linespoints lw 2 dt 2 title 'zmq-pubsub p99'
