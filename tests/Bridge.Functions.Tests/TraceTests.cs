using System.Collections.Immutable;
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
using Microsoft.Azure.Functions.Worker;
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
/// <remarks>
/// In the deployed app a function runs in the worker's invocation, not in the ASP.NET Core request of the worker's
/// Kestrel (the AspNetCore extension hands the request's HttpContext over to the invocation): the current activity is
/// the span the worker's <c>IFunctionTelemetryProvider</c> starts from the host's trace context, which
/// <c>UseFunctionsWorkerDefaults</c> records. This test starts that span with the worker's own provider, resolved from
/// the app's services; what stays modelled is the Functions host (its span, and the invocation's trace context).
/// </remarks>
public sealed class TraceTests
{
    private const string Caller = "invoker@p.iam.gserviceaccount.com";

    // Stands in for the Functions host, which starts each invocation's span and hands its context to the worker.
    private static readonly ActivitySource FunctionsHost = new("Bridge.Functions.Tests.Host", "1.0");

    // The worker's invocation spans (Microsoft.Azure.Functions.Worker.Core, recorded through UseFunctionsWorkerDefaults).
    private const string WorkerSource = "Microsoft.Azure.Functions.Worker";

    [Fact]
    public async Task An_events_exported_trace_has_one_root_and_no_orphan_spans()
    {
        await using var emulator = await EmulatorHost.StartAsync();
        var queue = await emulator.CreateQueueAsync();

        // The callback function on a port bound as 0, as the Functions host would serve it. Logging is on, so ASP.NET
        // Core starts its own request activity, which nothing records (as in the worker's Kestrel): Bridge's span
        // must not hang off it.
        IHost? functionApp = null;
        var front = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false"]); // settings read once: no inotify watch of the working directory and all below it
        var frontErrors = new ErrorLogGuard();
        front.Logging.ClearProviders().AddProvider(frontErrors);
        front.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        using var frontCheck = frontErrors.CheckOnDispose(); // declared first: checked after the server stopped, even if the test threw
        await using var callbackServer = front.Build();
        callbackServer.MapPost("/api/tasks/callback", async (HttpContext context) =>
        {
            Assert.NotNull(Activity.Current); // ASP.NET Core's own, unrecorded

            // The host continues the dispatch's trace and invokes the function; the worker starts its invocation span.
            ActivityContext.TryParse(context.Request.Headers.TraceParent, context.Request.Headers.TraceState, out var dispatched);
            using var hostSpan = FunctionsHost.StartActivity("POST /api/tasks/callback", ActivityKind.Server, dispatched);
            using var invocation = StartWorkerInvocation(functionApp!, "TaskCallback", hostSpan!);
            var function = ActivatorUtilities.CreateInstance<CallbackFunction>(functionApp!.Services);
            await (await function.RunAsync(context.Request)).ExecuteAsync(context);
        });
        await callbackServer.StartAsync();
        var port = new Uri(callbackServer.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()).Port;
        var callbackUrl = $"http://127.0.0.1:{port}/api/tasks/callback";

        var spans = new LockedCollection<Activity>();
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
            using var worker = StartWorkerInvocation(host, "ForwardHttpEvent", invocation);
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

        // Both functions' spans hang under the worker's invocation span, recorded by the app's own tracer provider,
        // which hangs under the host's.
        var workerSpans = trace.Where(s => s.Source.Name == WorkerSource).ToDictionary(s => s.SpanId);
        Assert.Equal(2, workerSpans.Count);
        var callbackInvocation = Assert.Contains(callback.ParentSpanId, workerSpans);
        Assert.Equal("function TaskCallback", callbackInvocation.DisplayName);
        Assert.Equal(FunctionsHost.Name, Assert.Single(trace, s => s.SpanId == callbackInvocation.ParentSpanId).Source.Name);
        var forward = Assert.Single(trace, s => s.DisplayName == "forward orders");
        Assert.Equal("function ForwardHttpEvent", Assert.Contains(forward.ParentSpanId, workerSpans).DisplayName);
    }

    /// <summary>
    /// The span the worker starts for an invocation (FunctionsApplication.InvokeFunctionAsync), by the worker's own
    /// telemetry provider as the app registers it; only the invocation's context is the test's.
    /// </summary>
    private static Activity StartWorkerInvocation(IHost app, string function, Activity hostSpan)
    {
        var providerType = typeof(FunctionContext).Assembly.GetType("Microsoft.Azure.Functions.Worker.Diagnostics.IFunctionTelemetryProvider", throwOnError: true)!;
        var provider = app.Services.GetRequiredService(providerType);
        var start = providerType.GetMethod("StartActivityForInvocation")!;
        var activity = (Activity?)start.Invoke(provider, [new InvocationContext(function, hostSpan.Id!, hostSpan.TraceStateString)]);
        Assert.NotNull(activity); // null would mean nothing listens to the worker's source: its spans go unrecorded
        Assert.Equal(WorkerSource, activity.Source.Name);
        return activity;
    }

    /// <summary>What the worker's telemetry provider reads of an invocation: its id, function name and trace context.</summary>
    private sealed class InvocationContext(string function, string traceParent, string? traceState) : FunctionContext
    {
        public override string InvocationId { get; } = Guid.NewGuid().ToString();

        public override string FunctionId => function;

        public override TraceContext TraceContext { get; } = new HostTraceContext(traceParent, traceState ?? string.Empty);

        public override BindingContext BindingContext => throw new NotSupportedException();

        public override RetryContext RetryContext => throw new NotSupportedException();

        public override IServiceProvider InstanceServices { get; set; } = null!;

        public override FunctionDefinition FunctionDefinition { get; } = new Definition(function);

        public override IDictionary<object, object> Items { get; set; } = new Dictionary<object, object>();

        public override IInvocationFeatures Features => throw new NotSupportedException();
    }

    private sealed class HostTraceContext(string traceParent, string traceState) : TraceContext
    {
        public override string TraceParent => traceParent;

        public override string TraceState => traceState;
    }

    private sealed class Definition(string name) : FunctionDefinition
    {
        public override ImmutableArray<FunctionParameter> Parameters => [];

        public override string PathToAssembly => typeof(CallbackFunction).Assembly.Location;

        public override string EntryPoint => name;

        public override string Id => name;

        public override string Name => name;

        public override IImmutableDictionary<string, BindingMetadata> InputBindings => ImmutableDictionary<string, BindingMetadata>.Empty;

        public override IImmutableDictionary<string, BindingMetadata> OutputBindings => ImmutableDictionary<string, BindingMetadata>.Empty;
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
}
