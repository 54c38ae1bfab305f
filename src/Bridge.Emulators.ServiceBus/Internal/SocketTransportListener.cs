using System.Net;
using System.Net.Sockets;
using Microsoft.Azure.Amqp;
using Microsoft.Azure.Amqp.Transport;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>
/// Plain TCP listener over a socket bound up front, so port 0 can be read back (the library's own TCP listener binds
/// only when it starts listening and does not expose the port).
/// </summary>
internal sealed class SocketTransportListener : TransportListener
{
    readonly Socket socket;
    readonly CancellationTokenSource stopping = new();

    public SocketTransportListener(IPAddress address, int port)
        : base("sb-emulator-tcp")
    {
        socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(512);
        }
        catch (SocketException)
        {
            // A port in use: the caller names it; the socket is not left open behind the failed start.
            socket.Dispose();
            throw;
        }

        Port = ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public int Port { get; }

    protected override void OnListen() => _ = AcceptLoopAsync();

    async Task AcceptLoopAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                accepted = await socket.AcceptAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (stopping.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            try
            {
                accepted.NoDelay = true;
                var transport = new SocketTransport(accepted);
                transport.Open();
                OnTransportAccepted(new TransportAsyncCallbackArgs { Transport = transport, CompletedSynchronously = false });
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException or AmqpException)
            {
                accepted.Dispose();
            }
        }
    }

    protected override bool CloseInternal()
    {
        Stop();
        return true;
    }

    protected override void AbortInternal() => Stop();

    void Stop()
    {
        if (!stopping.IsCancellationRequested)
        {
            stopping.Cancel();
            socket.Dispose();
        }
    }
}

/// <summary>
/// An AMQP transport over a connected socket. Reads and writes always complete asynchronously (the library's callback
/// contract), one at a time in each direction as the library issues them.
/// </summary>
internal sealed class SocketTransport(Socket socket) : TransportBase("sb-emulator-socket")
{
    readonly string localEndPoint = socket.LocalEndPoint?.ToString() ?? "";
    readonly string remoteEndPoint = socket.RemoteEndPoint?.ToString() ?? "";

    public override string LocalEndPoint => localEndPoint;

    public override string RemoteEndPoint => remoteEndPoint;

    public override void SetMonitor(ITransportMonitor usageMeter)
    {
    }

    public override bool WriteAsync(TransportAsyncCallbackArgs args)
    {
        _ = WriteCoreAsync(args);
        return true;
    }

    async Task WriteCoreAsync(TransportAsyncCallbackArgs args)
    {
        await Task.Yield();
        try
        {
            if (args.Buffer is not null)
            {
                await SendAllAsync(new ReadOnlyMemory<byte>(args.Buffer, args.Offset, args.Count)).ConfigureAwait(false);
            }
            else
            {
                foreach (var buffer in args.ByteBufferList)
                {
                    await SendAllAsync(new ReadOnlyMemory<byte>(buffer.Buffer, buffer.Offset, buffer.Length)).ConfigureAwait(false);
                }
            }

            args.BytesTransfered = args.Count;
            args.Exception = null;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            args.Exception = e;
        }

        args.CompletedSynchronously = false;
        args.CompletedCallback(args);
    }

    async Task SendAllAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    public override bool ReadAsync(TransportAsyncCallbackArgs args)
    {
        _ = ReadCoreAsync(args);
        return true;
    }

    async Task ReadCoreAsync(TransportAsyncCallbackArgs args)
    {
        await Task.Yield();
        try
        {
            args.BytesTransfered = await socket.ReceiveAsync(new Memory<byte>(args.Buffer, args.Offset, args.Count), SocketFlags.None).ConfigureAwait(false);
            args.Exception = null;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            args.Exception = e;
        }

        args.CompletedSynchronously = false;
        args.CompletedCallback(args);
    }

    protected override bool OpenInternal() => true;

    protected override bool CloseInternal()
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
        return true;
    }

    protected override void AbortInternal() => socket.Dispose();
}
