// The seed's Server (shared/seeds/000_*.txt), with the port taken from the command
// line and the listening port printed so a test can find it; otherwise unchanged.
import java.io.*;
import java.net.*;

public class Server {

    private ServerSocket ss;

    public Server(int port) throws Exception {
        ss = new ServerSocket(port, 50, InetAddress.getByName("127.0.0.1"));
        System.out.println("listening on " + ss.getLocalPort());
        System.out.flush();
    }

    public void doAccept() throws Exception {

        while (true) {
            Socket client = ss.accept();
            System.out.println("get a conn " + client);
            new Worker(client).start();
        }
    }


    class Worker extends Thread {
        Socket client;
        byte[] buffer = new byte[1024];

        Worker(Socket socket) {
            client = socket;
        }

        public void run() {
            try {
                BufferedInputStream bis = new BufferedInputStream(client.getInputStream());
                BufferedOutputStream bos = new BufferedOutputStream(client.getOutputStream());
                int len = 0;
                while ((len = bis.read(buffer)) != -1) {
                    System.out.println(new String(buffer, 0, len));
                    bos.write(buffer, 0, len);
                }
            } catch (IOException e) {
                e.printStackTrace();
            }
        }
    }
    public static void main(String[] args) {
        try {
            Server server = new Server(Integer.parseInt(args[0]));
            server.doAccept();
        } catch (Exception e) {
            e.printStackTrace();
        }
    }

}
