/*  zcluster bench --plot: every comparison reported while one scenario runs
    (bench_report) is recorded here, written to a data file next to the
    image, and drawn by gnuplot, one panel per measure:

      without --rate  rate against message size, zcluster and raw;
      with --rate N   latency (p50 and p99, measured from the intended send
                      time) against the offered load, zcluster and raw side
                      by side on the same axes.
*/
#include "cli_bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLOT_ROWS_MAX 256

//  One comparison: x is the size in bytes, or the offered rate.
typedef struct {
    char measure[48], project[48], baseline[48];
    double x;
    size_t size;
    double project_y[2], baseline_y[2]; //  rate (one value), or p50 and p99 in us
} s_plot_row_t;

static struct {
    int active;
    int latency; //  --rate: latency against offered load
    char png[1024];
    int rows;
    s_plot_row_t row[PLOT_ROWS_MAX];
} s_plot;

int bench_plot_begin(const char *png)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "zcluster bench: --plot needs gnuplot, which is not installed "
                        "(Debian/Ubuntu: apt-get install gnuplot-nox)\n");
        return -1;
    }
    size_t len = strlen(png);
    if (len < 5 || len >= sizeof s_plot.png - 8 || strcmp(png + len - 4, ".png") != 0 ||
        strchr(png, '\'') || strchr(png, '\n')) {
        fprintf(stderr, "zcluster bench: --plot takes a FILE.png path (without quotes)\n");
        return -1;
    }
    snprintf(s_plot.png, sizeof s_plot.png, "%s", png);
    s_plot.rows = 0;
    s_plot.active = 1;
    return 0;
}

void bench_plot_record(const char *measure, const bench_options_t *opt,
                       const bench_result_t *project, const bench_result_t *baseline)
{
    s_plot.latency = opt->rate > 0;
    if (!s_plot.active || s_plot.rows >= PLOT_ROWS_MAX) return;
    if (s_plot.latency ? project->p50_us < 0 || baseline->p50_us < 0
                       : project->rate <= 0 && baseline->rate <= 0)
        return; //  nothing to draw on this plot's axes
    s_plot_row_t *row = &s_plot.row[s_plot.rows++];
    snprintf(row->measure, sizeof row->measure, "%s", measure);
    snprintf(row->project, sizeof row->project, "%s", project->name);
    snprintf(row->baseline, sizeof row->baseline, "%s", baseline->name);
    row->x = s_plot.latency ? opt->rate : (double)opt->size;
    row->size = opt->size;
    row->project_y[0] = s_plot.latency ? project->p50_us : project->rate;
    row->project_y[1] = project->p99_us;
    row->baseline_y[0] = s_plot.latency ? baseline->p50_us : baseline->rate;
    row->baseline_y[1] = baseline->p99_us;
}

//  Writes the data file: one gnuplot data block per measure. Returns 0 or -1.
static int s_plot_data(const char *data, const char **measures, int count)
{
    FILE *file = fopen(data, "w");
    if (!file) {
        fprintf(stderr, "zcluster bench: cannot write %s: %s\n", data, strerror(errno));
        return -1;
    }
    for (int m = 0; m < count; m++) {
        fprintf(file, "# measure %s\n", measures[m]);
        fprintf(file, s_plot.latency
                          ? "# offered_per_s project_p50_us project_p99_us baseline_p50_us "
                            "baseline_p99_us\n"
                          : "# size_bytes project_rate baseline_rate\n");
        for (int r = 0; r < s_plot.rows; r++) {
            const s_plot_row_t *row = &s_plot.row[r];
            if (strcmp(row->measure, measures[m]) != 0) continue;
            if (s_plot.latency)
                fprintf(file, "%.0f %.1f %.1f %.1f %.1f\n", row->x, row->project_y[0],
                        row->project_y[1], row->baseline_y[0], row->baseline_y[1]);
            else
                fprintf(file, "%.0f %.0f %.0f\n", row->x, row->project_y[0], row->baseline_y[0]);
        }
        fprintf(file, "\n\n");
    }
    fclose(file);
    return 0;
}

//  Writes the gnuplot script that draws data into the png. Returns 0 or -1.
static int s_plot_script(const char *script, const char *data, const char **measures, int count)
{
    FILE *file = fopen(script, "w");
    if (!file) {
        fprintf(stderr, "zcluster bench: cannot write %s: %s\n", script, strerror(errno));
        return -1;
    }
    int columns = count < 2 ? 1 : 2, lines = (count + columns - 1) / columns;
    fprintf(file, "set terminal png noenhanced size %d,%d\nset output '%s'\n", columns * 700,
            lines * 450, s_plot.png);
    if (s_plot.latency)
        fprintf(file, "set logscale x 10\nset logscale y 10\nset grid\nset key top left\n"
                      "set xlabel 'offered load (per second)'\n"
                      "set ylabel 'latency from intended send (us)'\nset format x '%%.0s%%c'\n");
    else
        fprintf(file, "set logscale x 2\nset logscale y 10\nset xrange [11:24000]\nset grid\n"
                      "set key bottom left\nset xlabel 'message size (bytes)'\n"
                      "set ylabel 'per second'\nset format y '%%.0s%%c'\n"
                      "set xtics (16, 64, 256, 1024, 4096, 16384)\n");
    if (count > 1) fprintf(file, "set multiplot layout %d,%d\n", lines, columns);
    for (int m = 0; m < count; m++) {
        const s_plot_row_t *first = NULL;
        for (int r = 0; r < s_plot.rows && !first; r++)
            if (strcmp(s_plot.row[r].measure, measures[m]) == 0) first = &s_plot.row[r];
        if (s_plot.latency)
            fprintf(file, "set title 'zcluster bench %s --rate, %zu B messages'\n", measures[m],
                    first->size);
        else
            fprintf(file, "set title 'zcluster bench %s'\n", measures[m]);
        if (s_plot.latency)
            fprintf(file,
                    "plot '%s' index %d using 1:2 with linespoints lw 2 title '%s p50', "
                    "'' index %d using 1:3 with linespoints lw 2 title '%s p99', "
                    "'' index %d using 1:4 with linespoints lw 2 dt 2 title '%s p50', "
                    "'' index %d using 1:5 with linespoints lw 2 dt 2 title '%s p99'\n",
                    data, m, first->project, m, first->project, m, first->baseline, m,
                    first->baseline);
        else
            fprintf(file,
                    "plot '%s' index %d using 1:2 with linespoints lw 2 title '%s', "
                    "'' index %d using 1:3 with linespoints lw 2 dt 2 title '%s'\n",
                    data, m, first->project, m, first->baseline);
    }
    if (count > 1) fprintf(file, "unset multiplot\n");
    fclose(file);
    return 0;
}

int bench_plot_end(void)
{
    if (!s_plot.active) return 0;
    s_plot.active = 0;
    //  Measures in the order first seen.
    const char *measures[PLOT_ROWS_MAX];
    int count = 0;
    for (int r = 0; r < s_plot.rows; r++) {
        int seen = 0;
        for (int m = 0; m < count; m++)
            seen |= strcmp(measures[m], s_plot.row[r].measure) == 0;
        if (!seen) measures[count++] = s_plot.row[r].measure;
    }
    if (count == 0) {
        fprintf(stderr, "zcluster bench: --plot: nothing was measured to draw\n");
        return -1;
    }
    char data[1100], script[1100];
    size_t stem = strlen(s_plot.png) - 4;
    snprintf(data, sizeof data, "%.*s.dat", (int)stem, s_plot.png);
    snprintf(script, sizeof script, "%.*s.gp", (int)stem, s_plot.png);
    if (s_plot_data(data, measures, count) || s_plot_script(script, data, measures, count))
        return -1;
    char command[2400];
    snprintf(command, sizeof command, "gnuplot '%s'", script);
    int status = system(command);
    if (status != 0 || access(s_plot.png, R_OK) != 0) {
        fprintf(stderr, "zcluster bench: gnuplot failed on %s (exit %d)\n", script,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    printf("plot: %s (data %s, gnuplot script %s)\n", s_plot.png, data, script);
    return 0;
}
