using System.Diagnostics;
using System.Globalization;

namespace Bridge.Bench;

/// <summary>
/// One side's rate in one round, by the wall clock and by the CPU time the whole process spent (every thread: the
/// SDK's exporter, the GC, the in-process emulator). On a shared machine the wall clock also counts the time other
/// processes held the cores; CPU time does not, so its ratio is the steadier measure of what the product costs.
/// </summary>
internal readonly record struct Throughput(double PerWallSecond, double PerCpuSecond, double BytesPerOperation = 0)
{
    public static async Task<Throughput> MeasureAsync(int operations, Func<Task> run)
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes();
        var clock = Stopwatch.StartNew();
        await run();
        var wall = clock.Elapsed;
        process.Refresh();
        return new Throughput(operations / wall.TotalSeconds, operations / (process.TotalProcessorTime - cpu).TotalSeconds, (GC.GetTotalAllocatedBytes() - allocated) / (double)operations);
    }

    public static Throughput Measure(int operations, Action run)
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes();
        var clock = Stopwatch.StartNew();
        run();
        var wall = clock.Elapsed;
        process.Refresh();
        return new Throughput(operations / wall.TotalSeconds, operations / (process.TotalProcessorTime - cpu).TotalSeconds, (GC.GetTotalAllocatedBytes() - allocated) / (double)operations);
    }

    /// <summary>The median of the per-round ratios measured/baseline (both sides ran back to back in each round).</summary>
    public static (double Wall, double Cpu) MedianRatios(IReadOnlyList<Throughput> baseline, IReadOnlyList<Throughput> measured)
    {
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToList();
            return sorted[sorted.Count / 2];
        }

        return (
            Median(baseline.Zip(measured, (b, m) => m.PerWallSecond / b.PerWallSecond)),
            Median(baseline.Zip(measured, (b, m) => m.PerCpuSecond / b.PerCpuSecond)));
    }

    public static string Rounds(IEnumerable<Throughput> rounds) =>
        string.Join(", ", rounds.Select(r => r.PerWallSecond.ToString("F0", CultureInfo.InvariantCulture)));

    /// <summary>The median bytes allocated per operation in the whole process (every thread, the in-process emulator too).</summary>
    public static double MedianBytes(IEnumerable<Throughput> rounds)
    {
        var sorted = rounds.Select(r => r.BytesPerOperation).Order().ToList();
        return sorted[sorted.Count / 2];
    }

    public static double MedianWall(IEnumerable<Throughput> rounds)
    {
        var sorted = rounds.Select(r => r.PerWallSecond).Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
