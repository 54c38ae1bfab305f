using System.Diagnostics;
using Bridge.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Bridge.Bench;

/// <summary>
/// The OpenTelemetry SDK listening as a host sets it up (<see cref="BridgeTelemetryExtensions.AddBridgeTelemetry"/>:
/// Bridge's and the Cloud Tasks client's sources, outgoing HTTP, Bridge's meter, the default always-on sampler), with
/// exporters that count and drop behind the SDK's batch processor and periodic reader: the product pays for its spans
/// and measurements as in production; only the network upload is left out.
/// </summary>
internal sealed class ProductionTelemetry : IDisposable
{
    private readonly ServiceProvider? _services;
    private readonly CountingSpanExporter _spans = new();
    private readonly CountingMetricExporter _metrics = new();

    private ProductionTelemetry(bool enabled)
    {
        Enabled = enabled;
        if (!enabled)
        {
            return;
        }

        var services = new ServiceCollection();
        services.AddOpenTelemetry()
            .AddBridgeTelemetry(new ConfigurationBuilder().Build())
            .WithTracing(t => t.AddProcessor(new BatchActivityExportProcessor(_spans)))
            .WithMetrics(m => m.AddReader(new PeriodicExportingMetricReader(_metrics, exportIntervalMilliseconds: 1000)));
        _services = services.BuildServiceProvider();

        // What the host's hosted service does at start: build the providers, which starts their listeners.
        _services.GetRequiredService<TracerProvider>();
        _services.GetRequiredService<MeterProvider>();
    }

    public bool Enabled { get; }

    /// <summary>Telemetry on unless the benchmark's arguments say <c>--no-telemetry</c> (for comparison while profiling).</summary>
    public static ProductionTelemetry FromArgs(IReadOnlyCollection<string> args) => new(!args.Contains("--no-telemetry"));

    /// <summary>Flushes what the SDK still holds and says what it exported, so a run shows telemetry really was on.</summary>
    public string Summary()
    {
        if (_services is null)
        {
            return "Telemetry: off (--no-telemetry)";
        }

        _services.GetRequiredService<TracerProvider>().ForceFlush(10_000);
        _services.GetRequiredService<MeterProvider>().ForceFlush(10_000);
        if (_spans.Count == 0 || _metrics.Count == 0)
        {
            throw new InvalidOperationException($"Telemetry was meant to be on but exported {_spans.Count} spans and {_metrics.Count} metric points.");
        }

        return $"Telemetry: OpenTelemetry SDK on as AddBridgeTelemetry sets it up (always-on sampling, batch processor); {_spans.Count} spans and {_metrics.Count} metric points exported and dropped";
    }

    public void Dispose() => _services?.Dispose();

    private sealed class CountingSpanExporter : BaseExporter<Activity>
    {
        private long _count;

        public long Count => Interlocked.Read(ref _count);

        public override ExportResult Export(in Batch<Activity> batch)
        {
            Interlocked.Add(ref _count, batch.Count);
            return ExportResult.Success;
        }
    }

    private sealed class CountingMetricExporter : BaseExporter<Metric>
    {
        private long _count;

        public long Count => Interlocked.Read(ref _count);

        public override ExportResult Export(in Batch<Metric> batch)
        {
            foreach (var metric in batch)
            {
                foreach (ref readonly var point in metric.GetMetricPoints())
                {
                    _ = point;
                    Interlocked.Increment(ref _count);
                }
            }

            return ExportResult.Success;
        }
    }
}
