using System.Collections;
using System.Diagnostics;
using System.Net;
using System.Text;
using Bridge.CloudTasks;
using Bridge.Emulators.CloudTasks;
using Bridge.Functions.Functions;
using Bridge.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Trace;

namespace Bridge.Functions.Tests;

/// <summary>
/// The function app's telemetry as <see cref="BridgeFunctionsApp.Build"/> sets it up (the tracer provider Program
/// runs, with an in-memory exporter added): one event's trace, from the HTTP forward function through Cloud Tasks
/// (a real emulator) to the callback function on a real port, has one root and no span whose parent was not exported.
/// </summary>
public sealed class TraceTests
{
    private const string Caller = "invoker@p.iam.gserviceaccount.com";

    // Stands in for the Functions host, which starts each invocation's span and hands its context to the worker.
    private static readonly ActivitySource FunctionsHost = new("Bridge.Functions.Tests.Host", "1.0");

    [Fact]
    public async Task An_events_exported_trace_has_one_root_and_no_orphan_spans()
    {
        await using var emulator = await EmulatorHost.StartAsync();
        var queue = await emulator.CreateQueueAsync();

        // The callback function on a port bound as 0, as the Functions host would serve it. It logs nothing, so
        // ASP.NET Core starts no request activity of its own: the receiver continues the trace from traceparent.
        IHost? functionApp = null;
        var front = WebApplication.CreateSlimBuilder();
        front.Logging.ClearProviders();
        front.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using var callbackServer = front.Build();
        callbackServer.MapPost("/api/tasks/callback", async (HttpContext context) =>
        {
            var function = ActivatorUtilities.CreateInstance<CallbackFunction>(functionApp!.Services);
            await (await function.RunAsync(context.Request)).ExecuteAsync(context);
        });
        await callbackServer.StartAsync();
        var port = new Uri(callbackServer.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()).Port;
        var callbackUrl = $"http://127.0.0.1:{port}/api/tasks/callback";

        var spans = new SynchronizedList();
        using var host = BridgeFunctionsApp.Build(
            [
                "--BridgeServiceBusQueue=orders-in",
                $"--Bridge:CloudTasks:EmulatorHost={emulator.GrpcHostPort}",
                "--Bridge:CloudTasks:EmulatorDetection=None",
                $"--Bridge:Routes:orders:Queue={queue}",
                $"--Bridge:Routes:orders:TargetUrl={callbackUrl}",
                $"--Bridge:Routes:orders:ServiceAccountEmail={Caller}",
                $"--Bridge:Callback:PublicUrl={callbackUrl}",
                $"--Bridge:Callback:AllowedServiceAccounts:0={Caller}",
                $"--Bridge:Callback:Issuers:0:Issuer={emulator.Emulator.Issuer}",
                $"--Bridge:Callback:Issuers:0:DiscoveryUrl={new Uri(emulator.HttpAddress, "/.well-known/openid-configuration")}",
            ],
            // The emulator, in this process, stands in for Cloud Tasks: its dispatch spans join the trace as Cloud
            // Tasks' place in it would.
            builder => builder.Services.ConfigureOpenTelemetryTracerProvider(t => t
                .AddSource(FunctionsHost.Name, CloudTasksEmulatorTelemetry.SourceName)
                .AddInMemoryExporter(spans)));
        functionApp = host;
        _ = host.Services.GetRequiredService<TracerProvider>(); // what the host's telemetry service does when it starts

        // The Functions host invokes the HTTP forward function inside its own span: the trace's root.
        ActivityTraceId traceId;
        using (var invocation = FunctionsHost.StartActivity("POST /api/events/orders", ActivityKind.Server))
        {
            Assert.NotNull(invocation);
            traceId = invocation.TraceId;
            var status = await ForwardAsync(host.Services, "{\"traced\":true}");
            Assert.Equal(202, status);
        }

        // Parents end after their children: wait (bounded) until the callback settled, the dispatch ended and every span
        // has its parent.
        List<Activity> trace = [];
        List<Activity> orphans = [];
        await Eventually.HoldsAsync(
            () =>
            {
                trace = spans.Snapshot().Where(s => s.TraceId == traceId).ToList();
                var ids = trace.Select(s => s.SpanId).ToHashSet();
                orphans = trace.Where(s => s.ParentSpanId != default && !ids.Contains(s.ParentSpanId)).ToList();
                // The emulator's dispatch span ends once the callback answered: it is the last of the trace to arrive.
                return Task.FromResult(orphans.Count == 0
                    && trace.Any(s => s.DisplayName == "callback dispatch" && s.GetTagItem("bridge.outcome.id") is not null)
                    && trace.Any(s => s.Source.Name == CloudTasksEmulatorTelemetry.SourceName));
            },
            describe: () => $"orphan spans: {string.Join(", ", orphans.Select(o => $"{o.Source.Name}/{o.DisplayName}"))}; trace: {string.Join(", ", trace.Select(t => $"{t.Source.Name}/{t.DisplayName}"))}");

        var root = Assert.Single(trace, s => s.ParentSpanId == default);
        Assert.Equal(FunctionsHost.Name, root.Source.Name);
        Assert.Contains(trace, s => s.Source.Name == CloudTasksTelemetry.SourceName); // CreateTask
        Assert.Contains(trace, s => s.Source.Name == CloudTasksEmulatorTelemetry.SourceName); // the dispatch
        var callback = Assert.Single(trace, s => s.DisplayName == "callback dispatch");
        Assert.Equal(ActivityStatusCode.Unset, callback.Status);
        Assert.Contains(trace, s => s.Kind == ActivityKind.Client && s.ParentSpanId == callback.SpanId); // discovery / JWKS, instrumented
    }

    /// <summary>The forward function with the request as the Functions host hands it over.</summary>
    private static async Task<int> ForwardAsync(IServiceProvider services, string body)
    {
        var context = new DefaultHttpContext { RequestServices = services };
        context.Request.Method = "POST";
        context.Request.ContentType = "application/json";
        var bytes = Encoding.UTF8.GetBytes(body);
        context.Request.Body = new MemoryStream(bytes);
        context.Request.ContentLength = bytes.Length;
        context.Response.Body = new MemoryStream();
        var function = ActivatorUtilities.CreateInstance<HttpForwardFunction>(services);
        await (await function.RunAsync(context.Request, "orders")).ExecuteAsync(context);
        return context.Response.StatusCode;
    }

    /// <summary>The exporter adds from the threads that end spans while the test reads: one lock for both.</summary>
    private sealed class SynchronizedList : ICollection<Activity>
    {
        private readonly List<Activity> _items = [];

        public int Count
        {
            get
            {
                lock (_items)
                {
                    return _items.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public void Add(Activity item)
        {
            lock (_items)
            {
                _items.Add(item);
            }
        }

        public List<Activity> Snapshot()
        {
            lock (_items)
            {
                return [.. _items];
            }
        }

        public void Clear()
        {
            lock (_items)
            {
                _items.Clear();
            }
        }

        public bool Contains(Activity item) => Snapshot().Contains(item);

        public void CopyTo(Activity[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

        public bool Remove(Activity item)
        {
            lock (_items)
            {
                return _items.Remove(item);
            }
        }

        public IEnumerator<Activity> GetEnumerator() => Snapshot().GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
