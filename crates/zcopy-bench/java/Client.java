// The seed's Client (shared/seeds/000_*.txt): a file through a 1 KiB buffer to a
// socket. Host, port and file come from the command line; otherwise unchanged, but
// for closing the socket at the end so the receiver sees end of file.
import java.io.*;
import java.net.*;

class Client {
    Socket socket;

    Client(String host, int port) throws Exception {
        socket = new Socket(host, port);
    }

    public void sendMessage(String name) {
        File f = new File(name);
        byte[] buffer = new byte[1024];
        try {
            OutputStream outputStream = socket.getOutputStream();
            FileInputStream fis = new FileInputStream(f);
            int len = 0;
            while ((len = fis.read(buffer)) != -1) {
                outputStream.write(buffer, 0, len);
            }
            socket.close();
        } catch (FileNotFoundException e) {
            e.printStackTrace();
        } catch (IOException e) {
            e.printStackTrace();
        }
    }

    public static void main(String[] args) {
        try {
            Client client = new Client(args[0], Integer.parseInt(args[1]));
            client.sendMessage(args[2]);
        } catch (Exception e) {
            e.printStackTrace();
        }
    }
}
