using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Bridge.Emulators.ServiceBus;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner as a container runs it (0.0.0.0, port 0, stopped at the end of each test) with an intake key, reached
/// from this machine's own non-loopback address: what another machine would see. The embedded emulator's endpoints
/// and ports stay loopback-only; the dashboard opens to intake callers only; loopback is unchanged.
/// </summary>
public sealed class LoopbackBoundaryTests
{
    private const string Key = "dashboard-key-0123456789abcdefghijklmnopqrstuv";

    /// <summary>An IPv4 address of this machine that is not loopback (a container's eth0).</summary>
    private static IPAddress OwnAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses.Select(a => a.Address))
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
        ?? throw new InvalidOperationException("These tests need a non-loopback IPv4 address on this machine.");

    private static Task<RunningServer> StartOnAllInterfacesAsync() =>
        RunningServer.StartAsync("--Bridge:Server:ListenAddress=0.0.0.0", $"--Bridge:Server:Intake:KeyHashes:0={IntakeFixture.Hash(Key)}");

    private static HttpClient Remote(RunningServer server, IPAddress address) =>
        new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri($"http://{address}:{server.Port}") };

    [Fact]
    public async Task The_embedded_emulators_endpoints_and_ports_answer_only_on_loopback()
    {
        var own = OwnAddress();
        await using var server = await StartOnAllInterfacesAsync();
        using var remote = Remote(server, own);

        foreach (var path in new[] { "/.well-known/openid-configuration", "/health", "/v2beta3/projects/local-project/locations/local/queues" })
        {
            using var fromElsewhere = await remote.GetAsync(path);
            using var fromLoopback = await server.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, fromElsewhere.StatusCode);
            Assert.Equal(HttpStatusCode.OK, fromLoopback.StatusCode);
        }

        using var reset = await remote.PostAsync("/admin/reset", null);
        using var fault = await remote.GetAsync("/admin/faults");
        Assert.Equal(HttpStatusCode.NotFound, reset.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, fault.StatusCode);

        // gRPC and the Service Bus emulator are bound to 127.0.0.1: nothing listens on the other address.
        var serviceBusPort = server.Services.GetRequiredService<ServiceBusEmulatorHost>().Emulator!.Port;
        foreach (var port in new[] { server.EmulatorGrpcPort, serviceBusPort })
        {
            using var client = new TcpClient();
            var refused = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(own, port));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }

        // The intake itself is reachable there, behind its key.
        using var health = await remote.GetAsync("/api/health");
        using var events = await remote.PostAsync("/api/events/demo", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, events.StatusCode);
    }

    [Fact]
    public async Task The_dashboard_opens_beyond_loopback_to_intake_callers_only_and_a_browser_gets_in_with_code_once()
    {
        var own = OwnAddress();
        await using var server = await StartOnAllInterfacesAsync();
        using var remote = Remote(server, own);

        using var anonymous = await remote.GetAsync("/");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        using var wrongKey = await remote.GetAsync("/?code=wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        Assert.False(wrongKey.Headers.Contains("Set-Cookie"));

        using var withHeader = new HttpRequestMessage(HttpMethod.Get, "/outcomes");
        withHeader.Headers.Add("x-functions-key", Key);
        using var byHeader = await remote.SendAsync(withHeader);
        Assert.Equal(HttpStatusCode.OK, byHeader.StatusCode);

        // A browser: the key once in the URL, then a cookie; the key leaves the address bar at once.
        using var login = await remote.GetAsync($"/outcomes?code={Uri.EscapeDataString(Key)}&route=demo");
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        Assert.Equal("/outcomes?route=demo", login.Headers.Location!.OriginalString);
        var cookie = Assert.Single(login.Headers.GetValues("Set-Cookie"));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Key, cookie, StringComparison.Ordinal);
        using var withCookie = new HttpRequestMessage(HttpMethod.Get, "/outcomes?route=demo");
        withCookie.Headers.Add("Cookie", cookie.Split(';')[0]);
        using var byCookie = await remote.SendAsync(withCookie);
        Assert.Equal(HttpStatusCode.OK, byCookie.StatusCode);

        // Loopback, unchanged: no credentials needed.
        using var local = await server.Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, local.StatusCode);
    }
}
