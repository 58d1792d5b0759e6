// The seed's ClientChannel (shared/seeds/000_*.txt): FileChannel.transferTo, which
// is sendfile(2) on Linux. Host, port and file come from the command line; the loop
// around transferTo (which may move less than asked) and the close are added so the
// whole file arrives and the receiver sees end of file.
import java.io.*;
import java.net.*;
import java.nio.channels.*;

class ClientChannel {
    SocketChannel socketChannel;

    ClientChannel(String host, int port) throws Exception {
        socketChannel = SocketChannel.open();
        socketChannel.connect(new InetSocketAddress(host, port));
    }

    public void sendMessage(String name) {
        File f = new File(name);
        try {
            FileInputStream fis = new FileInputStream(f);
            FileChannel fileChannel = fis.getChannel();
            long sent = 0;
            while (sent < f.length()) {
                sent += fileChannel.transferTo(sent, f.length() - sent, socketChannel);
            }
            socketChannel.close();
        } catch (FileNotFoundException e) {
            e.printStackTrace();
        } catch (IOException e) {
            e.printStackTrace();
        }
    }

    public static void main(String[] args) {
        try {
            ClientChannel client = new ClientChannel(args[0], Integer.parseInt(args[1]));
            client.sendMessage(args[2]);
        } catch (Exception e) {
            e.printStackTrace();
        }
    }
}
